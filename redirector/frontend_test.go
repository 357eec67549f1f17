package redirector_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dt-cdn/dt/edgeset"
	"github.com/dt-cdn/dt/heartbeat"
	"github.com/dt-cdn/dt/internal/httpserve"
	"github.com/dt-cdn/dt/internal/testkit/procusage"
	"github.com/dt-cdn/dt/internal/testkit/promtest"
	"github.com/dt-cdn/dt/internal/testkit/testcert"
	"github.com/dt-cdn/dt/internal/testkit/wait"
	"github.com/dt-cdn/dt/redirector"
	"github.com/dt-cdn/dt/web"
)

// testFrontend serves h as dt redirector serves its visitors: NewFrontend's server on a
// listener on 127.0.0.1, until the test ends.
type testFrontend struct {
	addr    string
	reg     *prometheus.Registry
	front   *httpserve.Server
	tlsConf *tls.Config
}

func startFrontend(t *testing.T, cfg redirector.FrontendConfig, h http.Handler, useTLS bool) *testFrontend {
	t.Helper()
	reg := prometheus.NewRegistry()
	cfg.Registerer = reg
	front, err := redirector.NewFrontend(h, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var tc *tls.Config
	if useTLS {
		cert, _ := testcert.SelfSigned(t)
		tc = &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2", "http/1.1"}}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- front.Serve(ctx, ln, tc) }()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return &testFrontend{addr: ln.Addr().String(), reg: reg, front: front, tlsConf: tc}
}

// waitSendTimeouts waits up to 10 s for dt_redirector_send_timeouts_total to be want.
func (f *testFrontend) waitSendTimeouts(t *testing.T, want float64) {
	t.Helper()
	wait.For(t, 10*time.Second, func() error {
		if n := promtest.Value(t, f.reg, "dt_redirector_send_timeouts_total"); n != want {
			return fmt.Errorf("dt_redirector_send_timeouts_total %v, want %v", n, want)
		}
		return nil
	})
}

// visit is a legitimate visitor from 127.0.0.2 (a fresh connection): it must be answered within
// 5 s while an attack goes on from 127.0.0.1.
func (f *testFrontend) visit(t *testing.T, path string) {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}, Timeout: 5 * time.Second}
	tr := &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true, TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 5 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	scheme := "http"
	if f.tlsConf != nil {
		scheme = "https"
	}
	start := time.Now()
	resp, err := client.Get(scheme + "://" + f.addr + path)
	if err != nil {
		t.Fatalf("a visitor from another address was not answered: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	t.Logf("visitor from 127.0.0.2 answered %s in %s", resp.Status, time.Since(start).Round(time.Millisecond))
}

// dialSmallWindow connects from 127.0.0.1 with a small receive buffer, so that a client that
// stops reading fills what the kernels hold between it and the server within a few hundred
// kilobytes.
func dialSmallWindow(t *testing.T, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second, Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		return errors.Join(err, serr)
	}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// settled waits until the process holds about what it held before an attack.
func settled(t *testing.T, before procusage.Usage) procusage.Usage {
	t.Helper()
	return procusage.Settle(t, before, 2, 10*time.Second, nil)
}

// readUntilClosed reads c to its end and reports how long that took; it fails the test if the
// server has not closed the connection within 10 s.
func readUntilClosed(t *testing.T, c net.Conn) time.Duration {
	t.Helper()
	start := time.Now()
	c.SetReadDeadline(start.Add(10 * time.Second))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("the server did not close the connection within 10 s")
	}
	return time.Since(start)
}

// A client that sends a request's header section a byte at a time (slowloris), or opens a TLS
// connection and never says hello, is closed by ReadHeaderTimeout, while a visitor from another
// address is answered.
func TestFrontendSlowloris(t *testing.T) {
	const rht = 500 * time.Millisecond
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	for _, useTLS := range []bool{false, true} {
		t.Run(fmt.Sprintf("tls=%v", useTLS), func(t *testing.T) {
			f := startFrontend(t, redirector.FrontendConfig{ReadHeaderTimeout: rht}, ok, useTLS)
			before := procusage.Now(t)
			c, err := net.Dial("tcp", f.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			start := time.Now()
			closed := make(chan time.Duration, 1)
			go func() {
				// The server says nothing to a slowloris (net/http may answer 408 as it closes):
				// reading until the end tells when it closed.
				closed <- readUntilClosed(t, c)
			}()
			if !useTLS {
				io.WriteString(c, "GET / HTTP/1.1\r\nHost: r.test\r\n")
				go func() {
					for i := 0; i < 100; i++ {
						if _, err := io.WriteString(c, "X"); err != nil {
							return
						}
						time.Sleep(100 * time.Millisecond)
					}
				}()
			}
			f.visit(t, "/")
			d := <-closed
			t.Logf("slowloris closed %s after it connected (ReadHeaderTimeout %s)", time.Since(start).Round(time.Millisecond), rht)
			if d > 5*time.Second {
				t.Errorf("slowloris held its connection for %s, ReadHeaderTimeout %s", d, rht)
			}
			c.Close()
			t.Logf("before %s; after %s", before, settled(t, before))
		})
	}
}

// A client that pipelines requests and never reads the answers is closed once the server's
// writes have made no progress for SendTimeout, counted in the metric, while a visitor from
// another address is answered: over plain HTTP and over TLS.
func TestFrontendClientStopsReading(t *testing.T) {
	for _, useTLS := range []bool{false, true} {
		t.Run(fmt.Sprintf("tls=%v", useTLS), func(t *testing.T) { clientStopsReading(t, useTLS) })
	}
}

func clientStopsReading(t *testing.T, useTLS bool) {
	const sendTimeout = 500 * time.Millisecond
	body := bytes.Repeat([]byte("r"), 16<<10)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(body) })
	f := startFrontend(t, redirector.FrontendConfig{SendTimeout: sendTimeout}, h, useTLS)
	before := procusage.Now(t)
	c := dialSmallWindow(t, f.addr)
	if useTLS {
		tc := tls.Client(c, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
		tc.SetDeadline(time.Now().Add(5 * time.Second))
		if err := tc.Handshake(); err != nil {
			t.Fatal(err)
		}
		c = tc
	}
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		c.SetWriteDeadline(time.Now().Add(10 * time.Second))
		req := []byte("GET /a HTTP/1.1\r\nHost: r.test\r\n\r\n")
		for i := 0; i < 2000; i++ {
			if _, err := c.Write(req); err != nil {
				return
			}
		}
	}()
	start := time.Now()
	during := procusage.Now(t)
	f.visit(t, "/")
	f.waitSendTimeouts(t, 1)
	t.Logf("the client that stopped reading was cut off %s after it began (SendTimeout %s)", time.Since(start).Round(time.Millisecond), sendTimeout)
	readUntilClosed(t, c)
	<-writerDone
	c.Close()
	after := settled(t, before)
	t.Logf("before %s; during %s; after %s", before, during, after)
}

// A live dashboard stream lasts for many SendTimeouts while its client reads, and a stream whose
// client stops reading is closed after SendTimeout without progress, counted in the metric;
// the live one goes on.
func TestFrontendDashboardStream(t *testing.T) {
	const sendTimeout = 500 * time.Millisecond
	dash, err := web.New(web.Config{Edges: manyEdges(50), Tick: 20 * time.Millisecond,
		// The dashboard's own write deadline is put out of the way: SendTimeout is under test.
		WriteTimeout: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	f := startFrontend(t, redirector.FrontendConfig{SendTimeout: sendTimeout}, dash, false)
	t.Cleanup(dash.Close) // before the server's Close, which would wait on live streams

	live, err := net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	next := openStream(t, live)
	// The live client reads all along, counting events, until stop is closed.
	stop := make(chan struct{})
	type result struct {
		events int
		err    error
	}
	liveDone := make(chan result, 1)
	go func() {
		var r result
		for {
			select {
			case <-stop:
				liveDone <- r
				return
			default:
			}
			if r.err = next(); r.err != nil {
				liveDone <- r
				return
			}
			r.events++
		}
	}()

	before := procusage.Now(t)
	stalled := dialSmallWindow(t, f.addr)
	openStream(t, stalled) // and then read nothing
	start := time.Now()
	during := procusage.Now(t)
	f.waitSendTimeouts(t, 1)
	t.Logf("stalled stream cut off %s after it opened (SendTimeout %s)", time.Since(start).Round(time.Millisecond), sendTimeout)
	readUntilClosed(t, stalled)
	stalled.Close()
	after := settled(t, before)
	t.Logf("beside the live stream: before %s; during %s; after %s", before, during, after)

	// The live stream goes on for 4 more SendTimeouts.
	time.Sleep(4 * sendTimeout)
	close(stop)
	r := <-liveDone
	if r.err != nil {
		t.Fatalf("live stream ended after %d events, %s: %v", r.events, time.Since(start).Round(time.Millisecond), r.err)
	}
	t.Logf("live stream: %d events over %s", r.events, time.Since(start).Round(time.Millisecond))
	if got := promtest.Value(t, f.reg, "dt_redirector_send_timeouts_total"); got != 1 {
		t.Errorf("dt_redirector_send_timeouts_total %v after the live stream, want 1", got)
	}
}

// openStream asks for the dashboard's live stream on c and returns what reads its next event.
func openStream(t *testing.T, c net.Conn) (next func() error) {
	t.Helper()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "GET /api/events HTTP/1.1\r\nHost: r.test\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK || ct != "text/event-stream" {
		t.Fatalf("GET /api/events: %s, %s", resp.Status, ct)
	}
	return func() error {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return err
			}
			if strings.HasPrefix(line, "data: ") {
				return nil
			}
		}
	}
}

// manyEdges is a dashboard's source of n edges that never change: each event carries them all,
// tens of kilobytes.
type manyEdges int

func (n manyEdges) Status() edgeset.Status {
	st := edgeset.Status{Current: "deploy"}
	for i := range int(n) {
		st.Edges = append(st.Edges, edgeset.EdgeStatus{
			Edge:     heartbeat.Edge{Node: fmt.Sprintf("edge-%03d", i), Last: heartbeat.Heartbeat{PublicURL: fmt.Sprintf("https://edge-%03d.example.net", i)}},
			Eligible: true,
		})
	}
	return st
}

func (manyEdges) Changed() <-chan struct{} { return nil }
