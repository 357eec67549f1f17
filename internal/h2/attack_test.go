package h2

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/dt-cdn/dt/internal/testkit/h2test"
	"github.com/dt-cdn/dt/internal/testkit/procusage"
	"github.com/dt-cdn/dt/internal/testkit/syncbuf"
)

// The attacks here run over real sockets on loopback against a Server with short bounds; each
// checks that the bound holds, that it is counted, and that a visitor from another address is
// served meanwhile.

const (
	attackSendTimeout = time.Second
	// visitorBound is how long a visitor may wait for a page during an attack.
	visitorBound = 5 * time.Second
	// closeBound is how long after its bound an attacking connection may still be open:
	// checks run four times per SendTimeout, and the machine may be loaded.
	closeBound = 5 * time.Second
)

// countingBody is a Body of n bytes of pattern that counts its open readers.
type countingBody struct {
	n     int64
	open  *atomic.Int64
	opens *atomic.Int64
}

func (b countingBody) Len() int64 { return b.n }

func (b countingBody) Open(off int64) (io.ReadCloser, error) {
	b.open.Add(1)
	b.opens.Add(1)
	return &patternReader{off: off, left: b.n - off, open: b.open}, nil
}

type patternReader struct {
	off, left int64
	open      *atomic.Int64
	closed    bool
}

func (r *patternReader) Read(p []byte) (int, error) {
	if r.left == 0 {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), r.left)]
	for i := range p {
		p[i] = byte((r.off + int64(i)) % 251)
	}
	r.off += int64(len(p))
	r.left -= int64(len(p))
	return len(p), nil
}

func (r *patternReader) Close() error {
	if !r.closed {
		r.closed = true
		r.open.Add(-1)
	}
	return nil
}

// bodyServer serves /N with a countingBody of N bytes through SendBody, and /small in line.
type bodyServer struct {
	*testServer
	open, opens atomic.Int64
	log         syncbuf.Buffer
}

func startBodyServer(t *testing.T, configure func(*Server, *http.Server)) *bodyServer {
	t.Helper()
	bs := &bodyServer{}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/small" {
			io.WriteString(w, "small page")
			return
		}
		n, err := strconv.ParseInt(r.URL.Path[1:], 10, 64)
		if err != nil {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
		if err := w.(BodySender).SendBody(countingBody{n: n, open: &bs.open, opens: &bs.opens}); err != nil {
			t.Errorf("SendBody: %v", err)
		}
	})
	bs.testServer = startServer(t, h, func(s *Server, hs *http.Server) {
		s.SendTimeout = attackSendTimeout
		s.Logger = slog.New(slog.NewTextHandler(&bs.log, nil))
		if configure != nil {
			configure(s, hs)
		}
	})
	return bs
}

// visitor returns Go's HTTP/2 client, connecting from 127.0.0.2 as another visitor would.
func (ts *testServer) visitor() *http.Client {
	c := ts.client()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
	c.Transport.(*http.Transport).DialContext = d.DialContext
	c.Timeout = visitorBound
	return c
}

// visit checks that a visitor gets /small within visitorBound.
func (ts *testServer) visit(t *testing.T, during string) {
	t.Helper()
	c := ts.visitor()
	defer c.CloseIdleConnections()
	start := time.Now()
	resp, err := c.Get(ts.url("/small"))
	if err != nil {
		t.Fatalf("visitor during %s: %v", during, err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || string(body) != "small page" {
		t.Fatalf("visitor during %s: %q, %v", during, body, err)
	}
	t.Logf("visitor served in %v during %s", time.Since(start).Round(time.Millisecond), during)
}

// dialRaw opens a TLS connection that negotiated h2 (see h2test.Dial) and sends the preface
// and SETTINGS.
func (ts *testServer) dialRaw(t *testing.T, settings ...http2.Setting) (*h2test.Conn, *http2.Framer) {
	t.Helper()
	c := h2test.Dial(t, ts.addr, ts.pool, settings...)
	return c, c.Framer
}

// download dials with the largest windows and asks for a 1 GiB body on stream 1, which the
// server sends as fast as the client reads.
func (bs *bodyServer) download(t *testing.T) *h2test.Conn {
	t.Helper()
	c := h2test.Dial(t, bs.addr, bs.pool, h2test.MaxWindow)
	c.OpenConnWindow()
	if err := h2test.WriteGet(c.Framer, 1, "/1073741824"); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestZeroWindowHoldsNothing opens streams on a multi-MiB body with SETTINGS_INITIAL_WINDOW_SIZE
// 0 and never gives window: no body is open and no goroutine waits per stream; after
// SendTimeout the connections, every stream stalled, are closed.
func TestZeroWindowHoldsNothing(t *testing.T) {
	const conns, streams = 20, 100
	bs := startBodyServer(t, nil)
	bs.visit(t, "warm-up")
	u0 := procusage.Now(t)
	var cs []*h2test.Conn
	for range conns {
		c, fr := bs.dialRaw(t, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0})
		for i := range streams {
			if err := h2test.WriteGet(fr, uint32(2*i+1), "/8388608"); err != nil {
				t.Fatal(err)
			}
		}
		cs = append(cs, c)
	}
	// Each connection's streams are open once its headers came back; reading the first
	// frames of the last connection shows the server has taken them all in order.
	time.Sleep(200 * time.Millisecond)
	u1 := procusage.Now(t)
	t.Logf("%d connections x %d streams held: before %v; during %v (%.0f B per stream, client side included), bodies open %d, opened %d",
		conns, streams, u0, u1, float64(int64(u1.Heap)-int64(u0.Heap))/(conns*streams), bs.open.Load(), bs.opens.Load())
	if n := bs.open.Load(); n != 0 {
		t.Errorf("%d bodies open while no stream has window", n)
	}
	// Two goroutines per connection: net/http's, which waits in serveTLS, and the reader.
	if d := u1.Goroutines - u0.Goroutines; d > 2*conns+10 {
		t.Errorf("goroutines grew by %d for %d connections, want at most %d", d, conns, 2*conns+10)
	}
	bs.visit(t, "a zero-window hold")
	for _, c := range cs {
		h2test.ClosedWithin(t, c, attackSendTimeout+closeBound, "zero-window connection")
	}
	if n := bs.h2.Counters().StalledConns.Load(); n < conns {
		t.Errorf("StalledConns %d, want %d", n, conns)
	}
	if n := strings.Count(bs.log.String(), "every stream without window"); n != 1 {
		t.Errorf("%d log lines for %d stalled connections in one burst, want 1:\n%s", n, conns, bs.log.String())
	}
	bs.visit(t, "the aftermath")
	if n := bs.open.Load(); n != 0 {
		t.Errorf("%d bodies open after the connections closed", n)
	}
}

// TestStalledStreamReaped: a stream without window is reset after SendTimeout while the
// connection, whose client keeps asking for other things, lives and is served.
func TestStalledStreamReaped(t *testing.T) {
	bs := startBodyServer(t, nil)
	c, fr := bs.dialRaw(t, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0})
	defer c.Close()
	h2test.WriteGet(fr, 1, "/100000")
	start := time.Now()
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		tick := time.NewTicker(attackSendTimeout / 5)
		defer tick.Stop()
		for id := uint32(3); ; id += 2 {
			select {
			case <-stop:
				return
			case <-tick.C:
				h2test.WriteGet(fr, id, "/small")
				fr.WriteWindowUpdate(id, 100)
			}
		}
	}()
	c.SetReadDeadline(time.Now().Add(attackSendTimeout + closeBound))
	served := 0
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("read: %v (%d other streams served)", err, served)
		}
		switch f := f.(type) {
		case *http2.DataFrame:
			if f.StreamID != 1 && f.StreamEnded() {
				served++
			}
		case *http2.RSTStreamFrame:
			if f.StreamID != 1 {
				t.Fatalf("stream %d reset", f.StreamID)
			}
			took := time.Since(start)
			t.Logf("stalled stream reset after %v, %d other streams served meanwhile", took.Round(time.Millisecond), served)
			if took < attackSendTimeout {
				t.Errorf("reset after %v, before SendTimeout %v", took, attackSendTimeout)
			}
			if n := bs.h2.Counters().StreamsReaped.Load(); n != 1 {
				t.Errorf("StreamsReaped %d, want 1", n)
			}
			return
		case *http2.GoAwayFrame:
			t.Fatalf("GOAWAY %v on a connection that keeps asking", f.ErrCode)
		}
	}
}

// TestStopReadingMidDownload: a client that takes part of a large body and then reads no
// more is closed once a write has waited SendTimeout.
func TestStopReadingMidDownload(t *testing.T) {
	var states *connStates
	bs := startBodyServer(t, func(_ *Server, hs *http.Server) { states = watchConns(hs) })
	c := bs.download(t)
	t0 := time.Now()
	buf := make([]byte, 256<<10)
	io.ReadFull(c, buf) // part of the download, then silence
	start := time.Now()
	t.Logf("first 256 KiB in %v", start.Sub(t0).Round(time.Millisecond))
	bs.visit(t, "a stalled download")
	// The socket buffers fill first; then the write waits SendTimeout.
	for nc := recv(t, states.closed, attackSendTimeout+closeBound, "server-side close of the stalled download"); nc.RemoteAddr().String() != c.LocalAddr().String(); {
		nc = recv(t, states.closed, attackSendTimeout+closeBound, "server-side close of the stalled download") // the visitor's
	}
	t.Logf("closed %v after the client stopped reading", time.Since(start).Round(time.Millisecond))
	if n := bs.h2.Counters().WriteTimeouts.Load(); n != 1 {
		t.Errorf("WriteTimeouts %d, want 1", n)
	}
	if err := waitFor(func() bool { return bs.open.Load() == 0 }); err != nil {
		t.Errorf("%d bodies open after the connection closed", bs.open.Load())
	}
}

// waitFor polls cond for up to 5 s.
func waitFor(cond func() bool) error {
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return nil
		}
	}
	return errors.New("condition not met in 5 s")
}

// floodWithoutReading writes frames from next until the server closes the connection or d
// passes, never reading; it reports how long the server took, or an error after d.
func floodWithoutReading(c net.Conn, d time.Duration, next func() error) (time.Duration, error) {
	start := time.Now()
	c.SetWriteDeadline(start.Add(d))
	for {
		if err := next(); err != nil {
			if isTimeout(err) {
				return 0, fmt.Errorf("the server still took frames after %v", d)
			}
			return time.Since(start), nil
		}
	}
}

// batched returns a Framer that writes to c through a 64 KiB buffer, as a flooding client
// would (one TLS record per frame would spend the attacker's own CPU), and a flush func.
func batched(c net.Conn) (*http2.Framer, func() error) {
	bw := bufio.NewWriterSize(c, 64<<10)
	fr := http2.NewFramer(bw, nil)
	return fr, func() error {
		if bw.Buffered() > 60<<10 {
			return bw.Flush()
		}
		return nil
	}
}

// flood runs floodWithoutReading on its own goroutine; the returned func waits for it.
func flood(t *testing.T, c net.Conn, d time.Duration, next func() error) func() time.Duration {
	type result struct {
		took time.Duration
		err  error
	}
	done := make(chan result, 1)
	go func() {
		took, err := floodWithoutReading(c, d, next)
		done <- result{took, err}
	}()
	return func() time.Duration {
		t.Helper()
		r := <-done
		if r.err != nil {
			t.Fatal(r.err)
		}
		return r.took
	}
}

// TestControlFloodWithoutReading: PINGs, or SETTINGS, each owed an ack, from a client that
// reads nothing end its connection once the acks' write has waited SendTimeout.
func TestControlFloodWithoutReading(t *testing.T) {
	for _, tc := range []struct {
		kind  string
		write func(*http2.Framer)
	}{
		{"PING", func(fr *http2.Framer) { fr.WritePing(false, [8]byte{1}) }},
		{"SETTINGS", func(fr *http2.Framer) {
			fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 65535})
		}},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			bs := startBodyServer(t, nil)
			c, _ := bs.dialRaw(t)
			bf, flush := batched(c)
			wait := flood(t, c, attackSendTimeout+closeBound+10*time.Second, func() error { tc.write(bf); return flush() })
			time.Sleep(200 * time.Millisecond)
			bs.visit(t, "a "+tc.kind+" flood")
			took := wait()
			t.Logf("%s flood ended by the server after %v", tc.kind, took.Round(time.Millisecond))
		})
	}
}

// TestPingFloodDuringDownload: while the sender's write is blocked on a client that does not
// read, the reader goes on taking PINGs; past MaxQueuedControlFrames acks the connection is
// closed, without waiting for SendTimeout.
func TestPingFloodDuringDownload(t *testing.T) {
	bs := startBodyServer(t, func(s *Server, _ *http.Server) { s.SendTimeout = time.Minute })
	c := bs.download(t)
	time.Sleep(300 * time.Millisecond) // the download fills the socket buffers
	bf, flush := batched(c)
	took := flood(t, c, 30*time.Second, func() error { bf.WritePing(false, [8]byte{2}); return flush() })()
	t.Logf("PING flood during a blocked download ended after %v", took.Round(time.Millisecond))
	if n := bs.h2.Counters().ControlFloods.Load(); n != 1 {
		t.Errorf("ControlFloods %d, want 1", n)
	}
	bs.visit(t, "the aftermath")
}

// TestShutdownWithBlockedWrite: Shutdown and Close return promptly while a write is blocked on
// a client that does not read (SendTimeout long).
func TestShutdownWithBlockedWrite(t *testing.T) {
	bs := startBodyServer(t, func(s *Server, _ *http.Server) { s.SendTimeout = time.Minute })
	c := bs.download(t)
	time.Sleep(500 * time.Millisecond) // the download fills the socket buffers: the write blocks
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := bs.hs.Shutdown(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown: %v, want its context's deadline (a response is in flight)", err)
	}
	bs.hs.Close()
	bs.closed = true
	select {
	case <-bs.errc:
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return 5 s after Close")
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("Shutdown and Close took %v", took)
	}
	t.Logf("Shutdown (500 ms) and Close returned after %v with a write blocked", time.Since(start).Round(time.Millisecond))
	h2test.ClosedWithin(t, c, 5*time.Second, "after Close")
}

// TestIdleWithPings: PINGs every fraction of IdleTimeout do not keep a connection without
// requests open.
func TestIdleWithPings(t *testing.T) {
	const idle = 500 * time.Millisecond
	bs := startBodyServer(t, func(s *Server, _ *http.Server) { s.IdleTimeout = idle })
	c, fr := bs.dialRaw(t)
	h2test.WriteGet(fr, 1, "/small")
	start := time.Now()
	c.PingIdle(t, idle/5)
	h2test.ClosedWithin(t, c, idle+closeBound, "pinging idle connection")
	t.Logf("pinging connection closed %v after its last request (IdleTimeout %v)", time.Since(start).Round(time.Millisecond), idle)
	if n := bs.h2.Counters().IdleConns.Load(); n != 1 {
		t.Errorf("IdleConns %d, want 1", n)
	}
}

// TestContinuationFlood sends a header block that never ends, as empty CONTINUATION frames
// and as large ones: the connection is closed at once.
func TestContinuationFlood(t *testing.T) {
	for _, tc := range []struct {
		name string
		frag []byte
	}{
		{"empty", nil},
		{"large", h2test.LargeFragment(16000)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bs := startBodyServer(t, nil)
			c, fr := bs.dialRaw(t)
			first := h2test.Block(hpack.HeaderField{Name: ":method", Value: "GET"})
			fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: first})
			go floodWithoutReading(c, 10*time.Second, func() error { return fr.WriteContinuation(1, false, tc.frag) })
			took := h2test.ClosedWithin(t, c, closeBound, tc.name+" CONTINUATION flood")
			t.Logf("%s CONTINUATION flood closed after %v; counted %d", tc.name, took.Round(time.Millisecond), bs.h2.Counters().ContinuationFloods.Load())
			if tc.frag == nil {
				if n := bs.h2.Counters().ContinuationFloods.Load(); n != 1 {
					t.Errorf("ContinuationFloods %d, want 1", n)
				}
			}
			bs.visit(t, tc.name+" CONTINUATION flood")
		})
	}
}

// TestSendMemoryBudget: with SendMemory for one sending connection, three downloading at once
// take turns: every download completes, and the waits are counted.
func TestSendMemoryBudget(t *testing.T) {
	bs := startBodyServer(t, func(s *Server, _ *http.Server) { s.SendMemory = sendSlot })
	const n, size = 3, 4 << 20
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		c := bs.client()
		wg.Go(func() {
			defer c.CloseIdleConnections()
			resp, err := c.Get(bs.url("/" + strconv.Itoa(size)))
			if err != nil {
				errs <- err
				return
			}
			m, err := io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if err != nil || m != size {
				errs <- fmt.Errorf("%d of %d bytes: %v", m, size, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	t.Logf("%d downloads of 4 MiB with one connection's SendMemory: %d waits", n, bs.h2.Counters().SendMemoryWaits.Load())
	if bs.h2.Counters().SendMemoryWaits.Load() == 0 {
		t.Error("no connection waited for SendMemory")
	}
	if !strings.Contains(bs.log.String(), "send memory exhausted") {
		t.Error("the budget's exhaustion was not logged")
	}
}

// TestContinuationBound: a header block in MaxContinuationFrames CONTINUATIONs is a request
// like any other; one more ends the connection with ENHANCE_YOUR_CALM.
func TestContinuationBound(t *testing.T) {
	for _, tc := range []struct {
		frames int
		served bool
	}{{DefaultMaxContinuationFrames, true}, {DefaultMaxContinuationFrames + 1, false}} {
		t.Run(strconv.Itoa(tc.frames), func(t *testing.T) {
			bs := startBodyServer(t, nil)
			c, fr := bs.dialRaw(t)
			block := h2test.GetBlock("/small")
			// The block's first byte in HEADERS, the rest spread over the CONTINUATIONs (the
			// first ones empty).
			fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block[:1], EndStream: true})
			rest := block[1:]
			for i := range tc.frames {
				var frag []byte
				if i == tc.frames-1 {
					frag = rest
				}
				fr.WriteContinuation(1, i == tc.frames-1, frag)
			}
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			for {
				f, err := fr.ReadFrame()
				if err != nil {
					t.Fatalf("read: %v", err)
				}
				switch f := f.(type) {
				case *http2.DataFrame:
					if f.StreamEnded() {
						if !tc.served {
							t.Fatal("served past the bound")
						}
						return
					}
				case *http2.GoAwayFrame:
					if tc.served || f.ErrCode != http2.ErrCodeEnhanceYourCalm {
						t.Fatalf("GOAWAY %v", f.ErrCode)
					}
					return
				}
			}
		})
	}
}

// TestConnectionWindowStall: streams with window of their own behind a connection window the
// client never refreshes are reaped too: the connection is closed SendTimeout after the
// window ran out.
func TestConnectionWindowStall(t *testing.T) {
	bs := startBodyServer(t, nil)
	c, fr := bs.dialRaw(t, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 20})
	for _, id := range []uint32{1, 3, 5} {
		h2test.WriteGet(fr, id, "/1000000")
	}
	took := h2test.ClosedWithin(t, c, attackSendTimeout+closeBound, "connection with a spent window")
	t.Logf("closed %v after its streams began", took.Round(time.Millisecond))
	if n := bs.h2.Counters().StalledConns.Load(); n != 1 {
		t.Errorf("StalledConns %d, want 1", n)
	}
	if n := bs.open.Load(); n != 0 {
		t.Errorf("%d bodies open", n)
	}
}
