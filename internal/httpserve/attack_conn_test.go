package httpserve

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/dt-cdn/dt/internal/connlimit"
	"github.com/dt-cdn/dt/internal/testkit/procusage"
	"github.com/dt-cdn/dt/internal/testkit/promtest"
	"github.com/dt-cdn/dt/internal/testkit/testcert"
	"github.com/dt-cdn/dt/internal/testkit/wait"
)

// Limits the attacks run against: small, so that each attack reaches them quickly.
const (
	attackMaxConns      = 60
	attackMaxConnsPerIP = 20
	attackHeaderTimeout = time.Second
	attackSendTimeout   = time.Second
	attackBigSize       = 8 << 20
	// visitBound is how long a legitimate visitor may wait for its page during an attack.
	visitBound = 5 * time.Second
	// settleBound is how long the edge may take to close what an attack left, once it ends.
	settleBound = 10 * time.Second
)

// attackTarget is an edge serving a small page and a large file over one HTTP/1.x path.
type attackTarget struct {
	name string
	srv  *siteServer
	reg  *prometheus.Registry
	addr string
	tls  *tls.Config // the client's; nil for plain HTTP
}

func startAttackTarget(t *testing.T, mode string) *attackTarget {
	t.Helper()
	d := newDeploy(t, map[string]*testFile{
		"/index.html": {body: htmlPage("index", 2000), typ: "text/html; charset=utf-8"},
		"/big.bin":    {body: randomBytes(7, attackBigSize), typ: "application/octet-stream"},
	})
	reg := prometheus.NewRegistry()
	cfg := Config{Registerer: reg, ConnCaps: &connlimit.Config{MaxConns: attackMaxConns, MaxConnsPerAddr: attackMaxConnsPerIP}, ReadHeaderTimeout: attackHeaderTimeout,
		SendTimeout: attackSendTimeout, IdleTimeout: 5 * time.Second, ShutdownTimeout: time.Second, StdHTTP1: mode == "std"}
	s, err := newSiteServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.SetSite(d.site)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	at := &attackTarget{name: mode, srv: s, reg: reg, addr: ln.Addr().String()}
	var serverTLS *tls.Config
	if mode == "tls" {
		cert, pool := testcert.SelfSigned(t)
		serverTLS = &tls.Config{Certificates: []tls.Certificate{cert}}
		at.tls = &tls.Config{RootCAs: pool, NextProtos: []string{"http/1.1"}, ServerName: "127.0.0.1"}
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, ln, serverTLS) }()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return at
}

// dialFrom opens a connection from the loopback address from, TLS-wrapped (handshake not yet
// done) when the target speaks TLS and handshake is set; rcvBuf, if not zero, bounds the
// client's receive buffer. A connection the edge refused before connect returned is nil.
func (at *attackTarget) dialFrom(t *testing.T, from string, rcvBuf int) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	if rcvBuf > 0 {
		d.Control = func(_, _ string, rc syscall.RawConn) error {
			var serr error
			rc.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, rcvBuf) })
			return serr
		}
	}
	c, err := d.Dial("tcp", at.addr)
	if errors.Is(err, syscall.ECONNRESET) {
		return nil
	}
	if err != nil {
		t.Fatalf("dial from %s: %v", from, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// request opens a connection from the address from and sends a GET of path on it (over TLS
// for a TLS target), with the header lines given.
func (at *attackTarget) request(t *testing.T, from, path string, rcvBuf int, lines ...string) net.Conn {
	t.Helper()
	c := at.dialFrom(t, from, rcvBuf)
	if c == nil {
		t.Fatalf("connection from %s refused", from)
	}
	if at.tls != nil {
		tc := tls.Client(c, at.tls)
		if err := tc.Handshake(); err != nil {
			t.Fatalf("TLS handshake: %v", err)
		}
		c = tc
	}
	var extra string
	for _, l := range lines {
		extra += l + "\r\n"
	}
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: edge.test\r\n%s\r\n", path, extra); err != nil {
		t.Fatal(err)
	}
	return c
}

// visit fetches the page as a visitor from 127.0.0.200 does, on a new connection each try, until
// it gets it or visitBound passes; it returns how long that took.
func (at *attackTarget) visit(t *testing.T) time.Duration {
	t.Helper()
	start := time.Now()
	tr := &http.Transport{
		DialContext:       (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.200")}}).DialContext,
		TLSClientConfig:   at.tls,
		DisableKeepAlives: true,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: visitBound}
	scheme := "http"
	if at.tls != nil {
		scheme = "https"
	}
	var last error
	for time.Since(start) < visitBound {
		resp, err := client.Get(scheme + "://" + at.addr + "/index.html")
		if err == nil {
			body, rerr := io.ReadAll(resp.Body)
			resp.Body.Close()
			if rerr == nil && resp.StatusCode == 200 && bytes.Contains(body, []byte("<title>index</title>")) {
				return time.Since(start)
			}
			err = fmt.Errorf("%s, %d bytes, %v", resp.Status, len(body), rerr)
		}
		last = err
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: the visitor was not served within %s: %v (conns %+v)", at.name, visitBound, last, at.srv.ConnStats())
	return 0
}

// metrics returns the edge's metrics in the text format.
func (at *attackTarget) metrics(t *testing.T) string {
	t.Helper()
	rec := httptest.NewRecorder()
	promhttp.HandlerFor(at.reg, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	return rec.Body.String()
}

// settled waits until the edge holds no visitor connection and the process is back to about
// what it held before the attack (the few descriptors and goroutines of a client's or the
// runtime's that come and go are allowed).
func (at *attackTarget) settled(t *testing.T, before procusage.Usage) procusage.Usage {
	t.Helper()
	return procusage.Settle(t, before, 4, settleBound, func() error {
		if st := at.srv.ConnStats(); st.Open != 0 {
			return fmt.Errorf("%d visitor connections still open", st.Open)
		}
		return nil
	})
}

// serverClosed reports whether the edge closed c (a read ends in EOF or an error other than
// the client's own timeout) within d; the client's own read deadline is d.
func serverClosed(c net.Conn, d time.Duration) bool {
	c.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	return !(errors.As(err, &ne) && ne.Timeout())
}

// TestAttackConn runs connection-level attacks against an edge's HTTP/1.x paths: package h1
// (plain HTTP, the default), net/http (StdHTTP1) and HTTPS over HTTP/1.1. During each, a
// visitor from another address is served within visitBound; after each, the edge's
// connections are all closed and the process's descriptors and goroutines are back to about
// where they were, within settleBound.
func TestAttackConn(t *testing.T) {
	if testing.Short() {
		t.Skip("attacks take seconds each")
	}
	for _, mode := range []string{"h1", "std", "tls"} {
		t.Run(mode, func(t *testing.T) {
			at := startAttackTarget(t, mode)
			at.visit(t)
			attacks := []struct {
				name string
				run  func(t *testing.T, at *attackTarget)
			}{
				{"flood-one-address", floodOneAddress},
				{"flood-many-addresses", floodManyAddresses},
				{"slowloris", slowloris},
				{"stop-reading", stopReading},
			}
			if mode == "tls" {
				attacks = append(attacks, struct {
					name string
					run  func(t *testing.T, at *attackTarget)
				}{"handshake-never-done", handshakeNeverDone})
			}
			for _, a := range attacks {
				t.Run(a.name, func(t *testing.T) {
					before := procusage.Now(t)
					a.run(t, at)
					after := at.settled(t, before)
					t.Logf("%s/%s: before %s; after %s", mode, a.name, before, after)
				})
			}
		})
	}
}

// floodOneAddress: 200 connections from 127.0.0.2, held open. The edge keeps
// attackMaxConnsPerIP of them and resets the rest at accept.
func floodOneAddress(t *testing.T, at *attackTarget) {
	start := at.srv.ConnStats()
	var conns []net.Conn
	for range 200 {
		if c := at.dialFrom(t, "127.0.0.2", 0); c != nil {
			conns = append(conns, c)
		}
	}
	wait.For(t, 5*time.Second, func() error {
		st := at.srv.ConnStats()
		if got := st.RefusedPerAddr - start.RefusedPerAddr; st.Open != attackMaxConnsPerIP || got != 200-attackMaxConnsPerIP {
			return fmt.Errorf("open %d, refused per address %d; want %d and %d", st.Open, got, attackMaxConnsPerIP, 200-attackMaxConnsPerIP)
		}
		return nil
	})
	during := procusage.Now(t)
	took := at.visit(t)
	t.Logf("during: %s, edge %+v; visitor served in %s", during, at.srv.ConnStats(), took.Round(time.Millisecond))
	metrics := at.metrics(t)
	for _, want := range []string{
		fmt.Sprintf(`dt_edge_conns_refused_total{reason="per_ip"} %d`, at.srv.ConnStats().RefusedPerAddr),
		fmt.Sprintf("dt_edge_conns_max %d", attackMaxConns),
		"dt_edge_conns_open ",
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s:\n%s", want, metrics)
		}
	}
	for _, c := range conns {
		c.Close()
	}
}

// floodManyAddresses: 3 connections from each of 100 addresses (127.0.0.2 to 127.0.0.101),
// held open. The edge keeps attackMaxConns and resets the rest; ReadHeaderTimeout (or the TLS
// handshake's) frees the slots of those that send nothing, and the visitor gets in then.
func floodManyAddresses(t *testing.T, at *attackTarget) {
	start := at.srv.ConnStats()
	var conns []net.Conn
	for i := range 100 {
		for range 3 {
			if c := at.dialFrom(t, fmt.Sprintf("127.0.0.%d", 2+i), 0); c != nil {
				conns = append(conns, c)
			}
		}
	}
	var st connlimit.Stats
	wait.For(t, 5*time.Second, func() error {
		// Some of the first to arrive may already have been closed by ReadHeaderTimeout, and
		// their slots taken by later ones: at least 300 − 2·attackMaxConns are refused.
		st = at.srv.ConnStats()
		if st.Open > attackMaxConns || st.RefusedTotal-start.RefusedTotal < 300-2*attackMaxConns {
			return fmt.Errorf("after 300 connections from 100 addresses: %+v, want at most %d open and at least %d refused", st, attackMaxConns, 300-2*attackMaxConns)
		}
		return nil
	})
	during := procusage.Now(t)
	took := at.visit(t)
	t.Logf("during: %s, edge %+v (refused by the total cap: %d); visitor served in %s", during, st, st.RefusedTotal-start.RefusedTotal, took.Round(time.Millisecond))
	for _, c := range conns {
		c.Close()
	}
}

// slowloris: 15 connections from 127.0.0.2 send a request's header section a byte every 100
// ms. Each is closed by ReadHeaderTimeout, however it trickles.
func slowloris(t *testing.T, at *attackTarget) {
	const n = 15
	var wg sync.WaitGroup
	var conns []net.Conn
	closed := make(chan time.Duration, n)
	start := time.Now()
	for range n {
		c := at.dialFrom(t, "127.0.0.2", 0)
		if c == nil {
			t.Fatal("a slowloris connection was refused")
		}
		if at.tls != nil {
			tc := tls.Client(c, at.tls)
			if err := tc.Handshake(); err != nil {
				t.Fatal(err)
			}
			c = tc
		}
		conns = append(conns, c)
		wg.Go(func() {
			head := "GET /index.html HTTP/1.1\r\nHost: edge.test\r\nX-Slow: " + strings.Repeat("a", 1000)
			for i := range len(head) {
				if _, err := io.WriteString(c, head[i:i+1]); err != nil {
					closed <- time.Since(start)
					return
				}
				time.Sleep(100 * time.Millisecond)
			}
		})
	}
	took := at.visit(t)
	during := procusage.Now(t)
	wg.Wait()
	close(closed)
	for _, c := range conns {
		c.Close()
	}
	var worst time.Duration
	for d := range closed {
		worst = max(worst, d)
	}
	t.Logf("during: %s; visitor served in %s; every trickling connection closed within %s (ReadHeaderTimeout %s)",
		during, took.Round(time.Millisecond), worst.Round(time.Millisecond), attackHeaderTimeout)
	if worst > attackHeaderTimeout+4*time.Second {
		t.Errorf("a trickling connection lasted %s, ReadHeaderTimeout is %s", worst, attackHeaderTimeout)
	}
}

// stopReading: 5 clients from 127.0.0.3 ask for the large file and read 64 KiB of it, then
// nothing; each is closed about SendTimeout after its socket buffers fill, and counted. A client reading
// slowly but steadily, taking several SendTimeouts in all, gets the whole file.
func stopReading(t *testing.T, at *attackTarget) {
	const stalled = 5
	timeoutsBefore := promtest.Value(t, at.reg, "dt_edge_send_timeouts_total")
	var conns []net.Conn
	for range stalled {
		c := at.request(t, "127.0.0.3", "/big.bin", 64<<10)
		if _, err := io.ReadFull(c, make([]byte, 64<<10)); err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	steady := make(chan error, 1)
	var steadyTook time.Duration
	go func() {
		start := time.Now()
		c := at.request(t, "127.0.0.4", "/big.bin", 64<<10, "Connection: close")
		n, err := readSteadily(c, 64<<10, 25*time.Millisecond)
		c.Close()
		steadyTook = time.Since(start)
		if err == nil && n < attackBigSize {
			err = fmt.Errorf("read %d of %d bytes", n, attackBigSize)
		}
		steady <- err
	}()
	took := at.visit(t)
	during := procusage.Now(t)
	stallStart := time.Now()
	wait.For(t, settleBound, func() error {
		if st := at.srv.ConnStats(); st.Open > 1 {
			return fmt.Errorf("%d connections open, want only the steady reader's", st.Open)
		}
		return nil
	})
	t.Logf("during: %s; visitor served in %s; stalled downloads closed %s after they were all stalled (SendTimeout %s)",
		during, took.Round(time.Millisecond), time.Since(stallStart).Round(time.Millisecond), attackSendTimeout)
	if got := promtest.Value(t, at.reg, "dt_edge_send_timeouts_total") - timeoutsBefore; got != stalled {
		t.Errorf("dt_edge_send_timeouts_total rose by %v, want %d", got, stalled)
	}
	if err := <-steady; err != nil {
		t.Fatalf("the steady reader: %v", err)
	}
	t.Logf("the steady reader took %s for %d MiB (%d SendTimeouts)", steadyTook.Round(time.Millisecond), attackBigSize>>20, steadyTook/attackSendTimeout)
	for _, c := range conns {
		c.Close()
	}
}

// readSteadily reads c's response to its end (the connection's), step bytes at a time with a
// pause between reads, and returns the body bytes read.
func readSteadily(c net.Conn, step int, pause time.Duration) (int, error) {
	buf := make([]byte, step)
	var head []byte // the first bytes, where the header section ends
	total := 0
	c.SetReadDeadline(time.Now().Add(2 * time.Minute))
	for {
		n, err := io.ReadFull(c, buf)
		if len(head) < 4096 {
			head = append(head, buf[:n]...)
		}
		total += n
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			break
		}
		if err != nil {
			return 0, err
		}
		time.Sleep(pause)
	}
	i := bytes.Index(head, []byte("\r\n\r\n"))
	if i < 0 {
		return 0, errors.New("no header section")
	}
	return total - i - 4, nil
}

// handshakeNeverDone: 10 connections from 127.0.0.2 open TCP and send nothing, 10 send half a
// ClientHello. net/http bounds the handshake by ReadHeaderTimeout: each is closed.
func handshakeNeverDone(t *testing.T, at *attackTarget) {
	// A TLS record header announcing a 512-byte handshake message, and its first bytes.
	half := []byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03, 1, 2, 3, 4, 5, 6, 7, 8}
	var conns []net.Conn
	for i := range 20 {
		c := at.dialFrom(t, "127.0.0.2", 0)
		if c == nil {
			t.Fatal("a connection was refused")
		}
		if i%2 == 1 {
			if _, err := c.Write(half); err != nil {
				t.Fatal(err)
			}
		}
		conns = append(conns, c)
	}
	took := at.visit(t)
	during := procusage.Now(t)
	start := time.Now()
	for i, c := range conns {
		if !serverClosed(c, attackHeaderTimeout+4*time.Second) {
			t.Fatalf("connection %d with its handshake not done still open after %s", i, time.Since(start))
		}
	}
	t.Logf("during: %s; visitor served in %s; all 20 closed within %s of the visit (ReadHeaderTimeout %s)",
		during, took.Round(time.Millisecond), time.Since(start).Round(time.Millisecond), attackHeaderTimeout)
	for _, c := range conns {
		c.Close()
	}
}
