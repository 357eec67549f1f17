package httpserve

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/dt-cdn/dt/internal/testkit/h2test"
	"github.com/dt-cdn/dt/internal/testkit/procusage"
)

// HTTP/2 attacks against a running edge over TLS, served by package h2 and by net/http's
// server (StdHTTP2). Each checks that the edge closes what it must within a stated bound, that
// a visitor from another loopback address gets a page meanwhile, and that descriptors and
// goroutines come back to near their start.

const (
	attackSend = time.Second     // Config.SendTimeout in these tests
	attackIdle = 2 * time.Second // Config.IdleTimeout
	// attackBound is the time past its own bound an attacking connection may still be open
	// on a loaded machine (h2 looks for stalls four times per SendTimeout).
	attackBound = 6 * time.Second
	// pageBound is how long a visitor may wait for a page during an attack.
	pageBound = 5 * time.Second
	bigSize   = 4 << 20
)

type attackEdge struct {
	addr  string
	pool  *x509.CertPool
	srv   *siteServer
	small []byte
}

func startAttackEdge(t *testing.T, std bool) *attackEdge {
	t.Helper()
	d := newDeploy(t, map[string]*testFile{
		"/index.html": {body: []byte("<h1>a page</h1>\n"), typ: "text/html"},
		"/big.bin":    {body: randomBytes(7, bigSize), typ: "application/octet-stream", chunkAt: []int{bigSize / 2}},
	})
	s, err := newSiteServer(Config{SendTimeout: attackSend, IdleTimeout: attackIdle, StdHTTP2: std, ShutdownTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	s.SetSite(d.site)
	addr, pool := serveLoopbackTLS(t, s)
	return &attackEdge{addr: addr, pool: pool, srv: s, small: []byte("<h1>a page</h1>\n")}
}

// visit checks that Go's HTTP/2 client, from 127.0.0.2, gets the page within pageBound.
func (e *attackEdge) visit(t *testing.T, during string) {
	t.Helper()
	var p http.Protocols
	p.SetHTTP2(true)
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: e.pool}, Protocols: &p, DialContext: d.DialContext}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: pageBound}
	start := time.Now()
	resp, err := c.Get("https://" + e.addr + "/index.html")
	if err != nil {
		t.Fatalf("visitor during %s: %v", during, err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || !bytes.Equal(body, e.small) || resp.ProtoMajor != 2 {
		t.Fatalf("visitor during %s: HTTP/%d %q, %v", during, resp.ProtoMajor, body, err)
	}
	t.Logf("visitor served in %v during %s", time.Since(start).Round(time.Millisecond), during)
}

// dial opens an h2 connection from 127.0.0.1 and sends the preface and settings. Frames are
// written through a buffer (flush), as a flooding client would.
func (e *attackEdge) dial(t *testing.T, settings ...http2.Setting) (*h2test.Conn, *http2.Framer, func() error) {
	t.Helper()
	c := h2test.DialBuffered(t, e.addr, e.pool, settings...)
	return c, c.Framer, c.Flush
}

func bothServers(t *testing.T, f func(t *testing.T, std bool)) {
	t.Run("h2", func(t *testing.T) { f(t, false) })
	t.Run("StdHTTP2", func(t *testing.T) { f(t, true) })
}

// TestAttackH2ZeroWindow: connections whose streams ask for a 4 MiB file on disk and never
// open their window (SETTINGS_INITIAL_WINDOW_SIZE 0). With package h2 no stream holds a
// descriptor or a goroutine: the process grows by one socket and two goroutines per
// connection, and each connection is closed SendTimeout (+ a quarter) after its streams
// stalled. net/http's server holds a goroutine and an open blob per stream until the write
// deadline (SendTimeout) resets the stream.
func TestAttackH2ZeroWindow(t *testing.T) {
	bothServers(t, func(t *testing.T, std bool) {
		conns, streams := 50, 100
		if std {
			conns, streams = 20, 50 // a goroutine and a descriptor each, for a while
		}
		e := startAttackEdge(t, std)
		e.visit(t, "warm-up")
		u0 := procusage.Now(t)
		var cs []*h2test.Conn
		for range conns {
			c, fr, flush := e.dial(t, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0})
			for i := range streams {
				h2test.WriteGet(fr, uint32(2*i+1), "/big.bin")
			}
			if err := flush(); err != nil {
				t.Fatal(err)
			}
			cs = append(cs, c)
		}
		time.Sleep(300 * time.Millisecond)
		u1 := procusage.Now(t)
		t.Logf("%d connections x %d streams on a 4 MiB file, no window: before %v; during %v (%.0f B per stream)",
			conns, streams, u0, u1, float64(int64(u1.Heap)-int64(u0.Heap))/float64(conns*streams))
		if !std {
			// A socket per connection on each side of loopback, no file.
			if d := u1.FDs - u0.FDs; d > 2*conns+10 {
				t.Errorf("descriptors grew by %d for %d connections of %d streams", d, conns, streams)
			}
			// Per connection: net/http's goroutine waiting in h2, and h2's reader.
			if d := u1.Goroutines - u0.Goroutines; d > 2*conns+10 {
				t.Errorf("goroutines grew by %d for %d connections of %d streams", d, conns, streams)
			}
			// About 2.5 KB per stream was measured, connections and the client's side
			// included; net/http's server holds about 80 KB.
			if per := (int64(u1.Heap) - int64(u0.Heap)) / int64(conns*streams); per > 16<<10 {
				t.Errorf("heap grew by %d B per stalled stream", per)
			}
		}
		e.visit(t, "a zero-window hold")
		start := time.Now()
		for _, c := range cs {
			if std {
				break // net/http resets the streams and keeps the connection until IdleTimeout
			}
			h2test.ClosedWithin(t, c, attackSend+attackBound, "zero-window connection")
		}
		if !std {
			t.Logf("all closed %v after the hold began (SendTimeout %v)", time.Since(start).Round(time.Millisecond)+300*time.Millisecond, attackSend)
			if n := e.srv.H2Stats().StalledConns.Load(); n != uint64(conns) {
				t.Errorf("StalledConns %d, want %d", n, conns)
			}
		}
		for _, c := range cs {
			c.Close()
		}
		u2 := procusage.Settle(t, u0, 10, attackBound, nil)
		t.Logf("after: %v", u2)
		e.visit(t, "the aftermath")
	})
}

// TestAttackH2StopReading: a client takes 256 KiB of a 4 MiB download and then reads no more;
// the edge closes the connection once a write has waited SendTimeout.
func TestAttackH2StopReading(t *testing.T) {
	bothServers(t, func(t *testing.T, std bool) {
		e := startAttackEdge(t, std)
		u0 := procusage.Now(t)
		c, fr, flush := e.dial(t, h2test.MaxWindow)
		c.OpenConnWindow()
		for i := range 10 {
			h2test.WriteGet(fr, uint32(2*i+1), "/big.bin")
		}
		flush()
		io.ReadFull(c, make([]byte, 256<<10))
		during := procusage.Now(t)
		e.visit(t, "a client that stopped reading")
		// The server's descriptor for the connection goes when it is closed.
		start := time.Now()
		for procusage.Now(t).FDs >= during.FDs {
			if time.Since(start) > attackSend+attackBound {
				t.Fatalf("connection still open %v after the client stopped reading", time.Since(start))
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Logf("closed %v after the client stopped reading (SendTimeout %v); during %v", time.Since(start).Round(time.Millisecond), attackSend, during)
		c.Close()
		t.Logf("after: %v", procusage.Settle(t, u0, 10, attackBound, nil))
	})
}

// TestAttackH2ControlFloods: PING and SETTINGS frames, each owed an answer, from a client that
// reads nothing. The edge stops reading them when its writes block, and closes the connection
// SendTimeout later (net/http: WriteByteTimeout, or its 10,000 queued control frames).
func TestAttackH2ControlFloods(t *testing.T) {
	for _, kind := range []string{"PING", "SETTINGS"} {
		t.Run(kind, func(t *testing.T) {
			bothServers(t, func(t *testing.T, std bool) {
				e := startAttackEdge(t, std)
				u0 := procusage.Now(t)
				c, fr, flush := e.dial(t)
				next := func() { fr.WritePing(false, [8]byte{1}) }
				if kind == "SETTINGS" {
					next = func() { fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 65535}) }
				}
				type result struct {
					took    time.Duration
					timeout bool // the client's deadline ended the flood, not the edge
				}
				done := make(chan result, 1)
				go func() {
					start := time.Now()
					deadline := start.Add(attackSend + attackBound)
					switch {
					case std && kind == "SETTINGS":
						deadline = start.Add(3 * time.Second)
					case std:
						// net/http's server closes only once its writes stall: a test
						// machine busy with other tests can take longer to fill the
						// buffers before that.
						deadline = start.Add(attackSend + 2*attackBound)
					}
					c.SetWriteDeadline(deadline)
					var err error
					for n := 0; err == nil; n++ {
						next()
						if n%1000 == 0 {
							err = flush()
						}
					}
					var ne net.Error
					done <- result{time.Since(start), errors.As(err, &ne) && ne.Timeout()}
				}()
				time.Sleep(200 * time.Millisecond)
				e.visit(t, kind+" flood")
				r := <-done
				switch {
				case !r.timeout:
					t.Logf("%s flood without reading ended by the edge after %v", kind, r.took.Round(time.Millisecond))
				case std && kind == "SETTINGS":
					// net/http's server answers a run of SETTINGS with one ack (a flag, not a
					// queue), so their acks never fill its socket: the flood costs it CPU,
					// no memory, and it is not closed for it. PING acks are queued and
					// bounded (10,000, and WriteByteTimeout).
					t.Logf("net/http's server had not closed the connection after %v (SETTINGS acks coalesced)", r.took.Round(time.Millisecond))
				default:
					t.Fatalf("%s flood went on for %v", kind, r.took)
				}
				c.Close()
				t.Logf("after: %v (before: %v)", procusage.Settle(t, u0, 10, attackBound, nil), u0)
			})
		})
	}
}

// TestAttackH2IdlePings: a connection without requests that sends PING, SETTINGS,
// WINDOW_UPDATE and PRIORITY every fifth of IdleTimeout is closed IdleTimeout after its last
// request.
func TestAttackH2IdlePings(t *testing.T) {
	bothServers(t, func(t *testing.T, std bool) {
		e := startAttackEdge(t, std)
		c, fr, flush := e.dial(t)
		h2test.WriteGet(fr, 1, "/index.html")
		flush()
		start := time.Now()
		c.PingIdle(t, attackIdle/5)
		h2test.ClosedWithin(t, c, attackIdle+attackBound, "pinging idle connection")
		took := time.Since(start)
		t.Logf("pinging connection closed %v after its request (IdleTimeout %v)", took.Round(time.Millisecond), attackIdle)
		if took < attackIdle-100*time.Millisecond {
			t.Errorf("closed after %v, before IdleTimeout", took)
		}
	})
}

// TestAttackH2Continuation: a header block that never ends, as empty CONTINUATION frames and as
// 16 KB ones, is ended by the edge at once (package h2: ENHANCE_YOUR_CALM past
// MaxContinuationFrames, or the Framer's bound on a block's size).
func TestAttackH2Continuation(t *testing.T) {
	large := h2test.LargeFragment(16000)
	for _, tc := range []struct {
		name string
		frag []byte
	}{{"empty", nil}, {"large", large}} {
		t.Run(tc.name, func(t *testing.T) {
			bothServers(t, func(t *testing.T, std bool) {
				e := startAttackEdge(t, std)
				u0 := procusage.Now(t)
				c, fr, flush := e.dial(t)
				first := h2test.Block(hpack.HeaderField{Name: ":method", Value: "GET"})
				fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: first})
				wait := make(chan time.Duration, 1)
				go func() {
					start := time.Now()
					c.SetWriteDeadline(start.Add(attackBound + 5*time.Second))
					for n := 0; ; n++ {
						fr.WriteContinuation(1, false, tc.frag)
						if n%100 == 0 && flush() != nil {
							break
						}
					}
					wait <- time.Since(start)
				}()
				took := h2test.ClosedWithin(t, c, attackBound, tc.name+" CONTINUATION flood")
				t.Logf("%s CONTINUATION flood closed after %v", tc.name, took.Round(time.Millisecond))
				<-wait
				e.visit(t, tc.name+" CONTINUATION flood")
				c.Close()
				t.Logf("after: %v (before: %v)", procusage.Settle(t, u0, 10, attackBound, nil), u0)
			})
		})
	}
}
