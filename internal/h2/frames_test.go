package h2

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"strconv"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// frameClient speaks raw HTTP/2 frames to a test server, to reach states Go's client never
// enters (tiny windows, too many streams, silence).
type frameClient struct {
	t    testing.TB
	fr   *http2.Framer
	conn interface{ SetReadDeadline(time.Time) error }
	hbuf bytes.Buffer
	enc  *hpack.Encoder
}

// newFrameClient connects, sends the preface and settings, and reads up to the server's
// SETTINGS (acknowledged).
func newFrameClient(t testing.TB, ts *testServer, settings ...http2.Setting) *frameClient {
	t.Helper()
	c := ts.dialH2(t)
	if _, err := io.WriteString(c, clientPreface); err != nil {
		t.Fatal(err)
	}
	fc := &frameClient{t: t, fr: http2.NewFramer(c, c), conn: c}
	fc.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	fc.enc = hpack.NewEncoder(&fc.hbuf)
	if err := fc.fr.WriteSettings(settings...); err != nil {
		t.Fatal(err)
	}
	f := fc.next()
	sf, ok := f.(*http2.SettingsFrame)
	if !ok || sf.IsAck() {
		t.Fatalf("first frame %v, want the server's SETTINGS", f)
	}
	fc.fr.WriteSettingsAck()
	return fc
}

// next reads the next frame, failing the test after 5 s.
func (fc *frameClient) next() http2.Frame {
	fc.t.Helper()
	fc.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	f, err := fc.fr.ReadFrame()
	if err != nil {
		fc.t.Fatalf("read frame: %v", err)
	}
	return f
}

// get opens stream id with a GET of path.
func (fc *frameClient) get(id uint32, path string) {
	fc.t.Helper()
	fc.hbuf.Reset()
	for _, hf := range []hpack.HeaderField{
		{Name: ":method", Value: "GET"}, {Name: ":scheme", Value: "https"},
		{Name: ":authority", Value: "127.0.0.1"}, {Name: ":path", Value: path},
	} {
		fc.enc.WriteField(hf)
	}
	err := fc.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: fc.hbuf.Bytes(), EndStream: true, EndHeaders: true})
	if err != nil {
		fc.t.Fatal(err)
	}
}

// response is what frames brought for one stream.
type response struct {
	status string
	body   []byte
	ended  bool
	reset  http2.ErrCode
}

// collect reads frames into responses until done reports true, acknowledging SETTINGS and
// skipping the connection's own frames. It fails on GOAWAY unless allowGoAway.
func (fc *frameClient) collect(rs map[uint32]*response, done func() bool) {
	fc.t.Helper()
	get := func(id uint32) *response {
		if rs[id] == nil {
			rs[id] = &response{}
		}
		return rs[id]
	}
	for !done() {
		switch f := fc.next().(type) {
		case *http2.MetaHeadersFrame:
			r := get(f.StreamID)
			r.status = f.PseudoValue("status")
			r.ended = r.ended || f.StreamEnded()
		case *http2.DataFrame:
			r := get(f.StreamID)
			r.body = append(r.body, f.Data()...)
			r.ended = r.ended || f.StreamEnded()
		case *http2.RSTStreamFrame:
			get(f.StreamID).reset = f.ErrCode
		case *http2.GoAwayFrame:
			fc.t.Fatalf("unexpected GOAWAY %v", f.ErrCode)
		}
	}
}

// sizedHandler answers /N with N bytes of a repeating pattern, with a Content-Length.
func sizedHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.Atoi(r.URL.Path[1:])
		if err != nil {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(n))
		w.Write(pattern(n))
	})
}

func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('a' + i%26)
	}
	return b
}

// A stream out of window gives up the reader role: the connection still answers other streams,
// and the stream resumes when the window opens.
func TestFlowControlBlockedStreamDoesNotHoldConnection(t *testing.T) {
	ts := startServer(t, sizedHandler(), nil)
	fc := newFrameClient(t, ts, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 100})
	rs := map[uint32]*response{}
	fc.get(1, "/10000")
	fc.collect(rs, func() bool { return rs[1] != nil && len(rs[1].body) == 100 })
	fc.get(3, "/50")
	fc.collect(rs, func() bool { return rs[3] != nil && rs[3].ended })
	if !bytes.Equal(rs[3].body, pattern(50)) || rs[3].status != "200" {
		t.Fatalf("stream 3: %s, %d bytes", rs[3].status, len(rs[3].body))
	}
	if len(rs[1].body) != 100 || rs[1].ended {
		t.Fatalf("stream 1 went past its window: %d bytes, ended %v", len(rs[1].body), rs[1].ended)
	}
	fc.fr.WriteWindowUpdate(1, 9900)
	fc.collect(rs, func() bool { return rs[1].ended })
	if !bytes.Equal(rs[1].body, pattern(10000)) {
		t.Fatalf("stream 1: %d bytes, not the body", len(rs[1].body))
	}
}

// The connection window bounds all streams together; WINDOW_UPDATE on stream 0 releases it.
func TestFlowControlConnectionWindow(t *testing.T) {
	ts := startServer(t, sizedHandler(), nil)
	fc := newFrameClient(t, ts, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 20})
	rs := map[uint32]*response{}
	fc.get(1, "/100000")
	fc.collect(rs, func() bool { return rs[1] != nil && len(rs[1].body) == initialWindow })
	fc.fr.WriteWindowUpdate(0, 100000-initialWindow)
	fc.collect(rs, func() bool { return rs[1].ended })
	if !bytes.Equal(rs[1].body, pattern(100000)) {
		t.Fatalf("%d bytes, not the body", len(rs[1].body))
	}
}

// A SETTINGS_INITIAL_WINDOW_SIZE change applies to streams already open (RFC 9113 §6.9.2).
func TestFlowControlInitialWindowChange(t *testing.T) {
	ts := startServer(t, sizedHandler(), nil)
	fc := newFrameClient(t, ts, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0})
	rs := map[uint32]*response{}
	fc.get(1, "/3000")
	fc.collect(rs, func() bool { return rs[1] != nil && rs[1].status != "" })
	fc.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 3000})
	fc.collect(rs, func() bool { return rs[1].ended })
	if !bytes.Equal(rs[1].body, pattern(3000)) {
		t.Fatalf("%d bytes, not the body", len(rs[1].body))
	}
}

// Streams count against MaxConcurrentStreams until their handlers return; one more is refused,
// and accepted again once one finished.
func TestMaxConcurrentStreams(t *testing.T) {
	ts := startServer(t, sizedHandler(), func(s *Server, _ *http.Server) { s.MaxConcurrentStreams = 2 })
	fc := newFrameClient(t, ts, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0})
	rs := map[uint32]*response{}
	fc.get(1, "/10")
	fc.get(3, "/10")
	fc.get(5, "/10")
	fc.collect(rs, func() bool { return rs[5] != nil && rs[5].reset != 0 })
	if rs[5].reset != http2.ErrCodeRefusedStream {
		t.Fatalf("stream 5 reset with %v, want REFUSED_STREAM", rs[5].reset)
	}
	fc.fr.WriteWindowUpdate(1, 10)
	fc.collect(rs, func() bool { return rs[1] != nil && rs[1].ended })
	// Stream 1's slot is free once its handler has returned, which may come a moment after its
	// last frame: a stream refused in that moment is asked again, a bounded number of times.
	id := uint32(7)
	for try := 0; ; try++ {
		fc.get(id, "/10")
		fc.fr.WriteWindowUpdate(id, 10)
		fc.collect(rs, func() bool { return rs[id] != nil && (rs[id].ended || rs[id].reset != 0) })
		if rs[id].reset != http2.ErrCodeRefusedStream || try == 50 {
			break
		}
		time.Sleep(10 * time.Millisecond)
		id += 2
	}
	if !bytes.Equal(rs[id].body, pattern(10)) || rs[id].reset != 0 {
		t.Fatalf("stream %d: %q, reset %v", id, rs[id].body, rs[id].reset)
	}
}

// Shutdown announces GOAWAY at once, refuses later streams, lets the stream in progress finish,
// then closes the connection.
func TestShutdownGoAwayThenFinish(t *testing.T) {
	ts := startServer(t, sizedHandler(), nil)
	fc := newFrameClient(t, ts, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0})
	rs := map[uint32]*response{}
	fc.get(1, "/500")
	fc.collect(rs, func() bool { return rs[1] != nil && rs[1].status != "" })
	shut := make(chan error, 1)
	go func() { shut <- ts.shutdown(t, 10*time.Second) }()
	var ga *http2.GoAwayFrame
	for ga == nil {
		if f, ok := fc.next().(*http2.GoAwayFrame); ok {
			ga = f
		}
	}
	if ga.ErrCode != http2.ErrCodeNo || ga.LastStreamID != 1 {
		t.Fatalf("GOAWAY %v last stream %d, want NO_ERROR and 1", ga.ErrCode, ga.LastStreamID)
	}
	fc.get(3, "/10")
	fc.collect(rs, func() bool { return rs[3] != nil && rs[3].reset != 0 })
	if rs[3].reset != http2.ErrCodeRefusedStream {
		t.Fatalf("stream 3 after GOAWAY reset with %v", rs[3].reset)
	}
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned (%v) with a stream in progress", err)
	default:
	}
	fc.fr.WriteWindowUpdate(1, 500)
	fc.collect(rs, func() bool { return rs[1].ended })
	if !bytes.Equal(rs[1].body, pattern(500)) {
		t.Fatalf("stream 1: %d bytes, not the body", len(rs[1].body))
	}
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	fc.expectClosed("after Shutdown returned")
}

// stalledStream starts a server with a 300 ms IdleTimeout whose handler writes a 1000-byte
// body, and a client that requests it with a zero window: the handler waits for window, and
// its Write's error arrives on returned.
func stalledStream(t *testing.T) (fc *frameClient, returned <-chan error) {
	t.Helper()
	errc := make(chan error, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1000")
		_, err := w.Write(pattern(1000))
		errc <- err
	})
	ts := startServer(t, h, func(s *Server, _ *http.Server) { s.IdleTimeout = 300 * time.Millisecond })
	fc = newFrameClient(t, ts, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0})
	fc.get(1, "/")
	return fc, errc
}

// expectClosed reads until the server closes the connection, failing if it is still open 5 s
// later.
func (fc *frameClient) expectClosed(when string) {
	fc.t.Helper()
	fc.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		if _, err := fc.fr.ReadFrame(); err != nil {
			if isTimeout(err) {
				fc.t.Fatal("connection still open " + when)
			}
			return
		}
	}
}

// A connection where a response waits for window and the peer says nothing for IdleTimeout is
// closed, and its handler returns.
func TestStalledConnectionIsClosed(t *testing.T) {
	fc, returned := stalledStream(t)
	select {
	case err := <-returned:
		if err == nil {
			t.Fatal("Write succeeded without window")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("handler still waiting for window 10 s later")
	}
	fc.expectClosed("after the idle timeout")
}

// PINGs are no progress: a client that keeps a response waiting on a closed window while
// pinging is closed after IdleTimeout all the same.
func TestStalledConnectionPingingIsClosed(t *testing.T) {
	fc, returned := stalledStream(t)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	pings := tick.C
	deadline := time.After(10 * time.Second)
	for {
		select {
		case err := <-returned:
			if err == nil {
				t.Fatal("Write succeeded without window")
			}
			return
		case <-pings:
			if err := fc.fr.WritePing(false, [8]byte{}); err != nil {
				pings = nil // closed by the server: the handler's error follows
			}
		case <-deadline:
			t.Fatal("handler still waiting for window 10 s later, the client pinging")
		}
	}
}

func TestPingIsAcknowledged(t *testing.T) {
	ts := startServer(t, sizedHandler(), nil)
	fc := newFrameClient(t, ts)
	data := [8]byte{1, 2, 3, 4, 5, 6, 7, 8}
	fc.fr.WritePing(false, data)
	for {
		if p, ok := fc.next().(*http2.PingFrame); ok {
			if !p.IsAck() || p.Data != data {
				t.Fatalf("PING ack %v, data %v", p.IsAck(), p.Data)
			}
			return
		}
	}
}

func isTimeout(err error) bool {
	var te interface{ Timeout() bool }
	return errors.As(err, &te) && te.Timeout()
}
