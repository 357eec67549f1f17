package h2

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// Protocol constants (RFC 9113 §6.5.2, §6.9.2).
const (
	initialWindow          = 65535
	maxWindow              = 1<<31 - 1
	minMaxFrameSize        = 16384
	initialHeaderTableSize = 4096
	// readBufferSize holds several small frames; a TLS record holds at most 16 KiB.
	readBufferSize = 16 << 10
	// connWindowBoost is added to the connection's receive window at the start, so that
	// request bodies on several streams are limited by their stream windows alone.
	connWindowBoost = 1<<20 - initialWindow
	// maxSettingsPerFrame bounds the work one SETTINGS frame can cause.
	maxSettingsPerFrame = 64
)

// clientPreface is what a client sends first (RFC 9113 §3.4).
const clientPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

var errConnClosed = errors.New("h2: connection closed")

// conn is one HTTP/2 connection.
//
// One goroutine at a time holds the reader role: it reads frames and runs handlers in line.
// When a handler must wait (moveReader), a new goroutine takes the role and the old one stays
// with the handler until it returns. Fields under "reader" belong to the role's holder; those
// under mu are shared.
type conn struct {
	srv         *Server
	nc          net.Conn
	h           http.Handler
	lim         limits
	log         *slog.Logger
	ctx         context.Context
	cancel      context.CancelFunc
	remoteAddr  string
	tls         *tls.ConnectionState // nil without TLS
	maxStreams  uint32
	inlineLimit int
	sendTimeout time.Duration
	checkEvery  time.Duration  // how often streams are checked for stalls while some are open
	maxCtrl     int            // MaxQueuedControlFrames
	wg          sync.WaitGroup // the goroutines of the reader role, of moved handlers and of the sender

	// reader
	br         *bufio.Reader // pooled; nil while waiting with no stream open (idleRead)
	resume     resumeReader  // br's reader after idleRead
	frames     *frameCounter // between br and fr; nil without a CONTINUATION bound
	fr         *http2.Framer // reads; its write side writes into out under mu
	armedFor   time.Time     // the read deadline set, valid when armed
	armed      bool
	prefaceOK  bool
	canonCache map[string]string

	wake      atomic.Bool  // the reader should look at the state again (see wakeReader)
	flooded   atomic.Bool  // control frames queued past maxCtrl: the reader closes the connection
	lastMoved atomic.Int64 // unix ns of the last request, body data, window update or response data

	mu                sync.Mutex
	cond              sync.Cond // L is &mu; broadcast when windows grow, streams end, the conn fails
	out               *[]byte   // frames not yet written (pooled), nil when there are none
	werr              error     // the write error, or errConnClosed, after which nothing is written
	writing           bool      // a goroutine is writing to the socket, without mu (flushLocked)
	closing           bool      // the last write gets goAwayTimeout, not SendTimeout
	wArmed            time.Time // when the write deadline was last moved
	ctrlQueued        int       // control frames queued since the last write began
	sendq             []*stream // streams whose body the sender sends (SendBody)
	senderRunning     bool
	enc               *hpack.Encoder
	hbuf              bytes.Buffer // enc's output
	streams           map[uint32]*stream
	maxClientStreamID uint32
	open              uint32 // streams with a handler running or a body still to send
	sendWindow        int64  // connection-level send window
	recvWindow        int64  // connection-level window the peer may still fill
	recvRefund        int64  // received bytes not yet given back by WINDOW_UPDATE
	peerWindow        int64  // the peer's SETTINGS_INITIAL_WINDOW_SIZE
	peerMaxFrame      uint32 // the peer's SETTINGS_MAX_FRAME_SIZE
	goAwaySent        bool
	shuttingDown      bool
	idleSince         time.Time // when open last dropped to zero (or the connection began)
	lastCheck         time.Time // when streams were last checked for stalls
}

// run holds the reader role first: it checks the preface, sends the server's SETTINGS and
// reads frames.
func (c *conn) run() {
	if c.tls != nil && !tlsAcceptable(c.tls) {
		c.closeWith(http2.ErrCodeInadequateSecurity, nil)
		return
	}
	c.nc.SetReadDeadline(time.Now().Add(prefaceTimeout))
	var preface [len(clientPreface)]byte
	if _, err := io.ReadFull(c.br, preface[:]); err != nil || string(preface[:]) != clientPreface {
		c.log.LogAttrs(c.ctx, slog.LevelDebug, "HTTP/2 connection without a valid preface",
			slog.String("remote", c.remoteAddr), slog.Any("error", err))
		c.closeWith(http2.ErrCodeProtocol, nil)
		return
	}
	c.mu.Lock()
	c.fr.WriteSettings(
		http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: c.maxStreams},
		http2.Setting{ID: http2.SettingMaxHeaderListSize, Val: c.lim.maxHeaderList},
		http2.Setting{ID: http2.SettingEnablePush, Val: 0},
	)
	c.fr.WriteWindowUpdate(0, connWindowBoost)
	c.recvWindow += connWindowBoost
	c.mu.Unlock()
	c.readLoop()
}

// readLoop reads and handles frames until the connection ends or the reader role moves to
// another goroutine.
func (c *conn) readLoop() {
	for {
		if c.br.Buffered() == 0 {
			// Everything received is answered: send it before waiting for more.
			c.mu.Lock()
			c.flushLocked()
			idle := c.open == 0 && c.prefaceOK
			c.mu.Unlock()
			if idle {
				c.idleRead()
			}
		}
		f, err := c.fr.ReadFrame()
		if err != nil {
			if !c.readFailed(err) {
				return
			}
			continue
		}
		err, moved := c.processFrame(f)
		if c.flooded.Load() {
			c.srv.stats().ControlFloods.Add(1)
			c.srv.logs().controlFlood.Hit(c.ctx, slog.String("remote", c.remoteAddr), slog.Int("limit", c.maxCtrl))
			c.closeWith(http2.ErrCodeEnhanceYourCalm, nil)
			return
		}
		if moved {
			return
		}
		if err != nil && !c.frameFailed(err) {
			return
		}
	}
}

// brPool holds the connections' read buffers. A connection with no stream open gives its
// buffer back while it waits (most of what an idle connection would hold).
var brPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, readBufferSize) }}

// idleRead waits for the peer's next byte without a read buffer, then takes one again with
// the byte (or the read's error) in front of the socket's next bytes.
func (c *conn) idleRead() {
	c.br.Reset(nil)
	brPool.Put(c.br)
	c.br = nil
	var one [1]byte
	n, err := connReader{c}.Read(one[:])
	c.resume = resumeReader{c: c, b: one[0], has: n == 1, err: err}
	c.br = brPool.Get().(*bufio.Reader)
	c.br.Reset(&c.resume)
}

// resumeReader gives the byte idleRead read, or its error, then reads the socket.
type resumeReader struct {
	c   *conn
	b   byte
	has bool
	err error
}

func (r *resumeReader) Read(p []byte) (int, error) {
	if r.has && len(p) > 0 {
		p[0], r.has = r.b, false
		return 1, nil
	}
	if r.err != nil {
		return 0, r.err
	}
	return connReader{r.c}.Read(p)
}

// brReader reads the connection's current read buffer, which idleRead swaps.
type brReader struct{ c *conn }

func (r brReader) Read(p []byte) (int, error) { return r.c.br.Read(p) }

// readFailed handles an error from ReadFrame; it reports whether reading goes on.
func (c *conn) readFailed(err error) bool {
	if errors.Is(err, http2.ErrFrameTooLarge) {
		err = http2.ConnectionError(http2.ErrCodeFrameSize) // §4.2
	}
	if errors.Is(err, errContinuationFlood) {
		c.srv.stats().ContinuationFloods.Add(1)
		c.srv.logs().continuationFlood.Hit(c.ctx, slog.String("remote", c.remoteAddr), slog.Int("limit", c.frames.maxContinuations))
		c.closeWith(http2.ErrCodeEnhanceYourCalm, nil)
		return false
	}
	var se http2.StreamError
	if errors.As(err, &se) {
		return c.frameFailed(se)
	}
	var ce http2.ConnectionError
	if errors.As(err, &ce) {
		c.log.LogAttrs(c.ctx, slog.LevelDebug, "HTTP/2 protocol error",
			slog.String("remote", c.remoteAddr), slog.Any("error", err), slog.String("detail", errString(c.fr.ErrorDetail())))
		c.closeWith(http2.ErrCode(ce), nil)
		return false
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, io.EOF) {
		// Idle, shut down or stalled (see keepReading), or the peer finished: a GOAWAY
		// tells a peer still listening not to reuse the connection.
		c.closeWith(http2.ErrCodeNo, nil)
	} else {
		c.closeWith(http2.ErrCodeNo, err) // broken: no GOAWAY is owed to a peer that is gone
	}
	return false
}

// frameFailed answers an error from handling a frame: a stream error resets that stream, a
// connection error ends the connection. It reports whether reading goes on.
func (c *conn) frameFailed(err error) bool {
	var se http2.StreamError
	if errors.As(err, &se) {
		c.mu.Lock()
		c.resetLocked(se.StreamID, se.Code)
		c.mu.Unlock()
		return true
	}
	var ce http2.ConnectionError
	code := http2.ErrCodeInternal
	if errors.As(err, &ce) {
		code = http2.ErrCode(ce)
	}
	c.log.LogAttrs(c.ctx, slog.LevelDebug, "HTTP/2 protocol error",
		slog.String("remote", c.remoteAddr), slog.Any("error", err))
	c.closeWith(code, nil)
	return false
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// processFrame handles one frame. moved reports that a handler run in line moved the reader
// role to another goroutine: the caller must then stop reading.
func (c *conn) processFrame(f http2.Frame) (err error, moved bool) {
	if !c.prefaceOK {
		// The preface continues with the client's SETTINGS (RFC 9113 §3.4).
		if sf, ok := f.(*http2.SettingsFrame); !ok || sf.IsAck() {
			return http2.ConnectionError(http2.ErrCodeProtocol), false
		}
		c.prefaceOK = true
		c.armed = false
		c.armReadDeadline()
	}
	switch f := f.(type) {
	case *http2.MetaHeadersFrame:
		c.moved()
		return c.processHeaders(f)
	case *http2.DataFrame:
		c.moved()
		return c.processData(f), false
	case *http2.SettingsFrame:
		return c.processSettings(f), false
	case *http2.WindowUpdateFrame:
		c.moved()
		return c.processWindowUpdate(f), false
	case *http2.PingFrame:
		return c.processPing(f), false
	case *http2.RSTStreamFrame:
		return c.processReset(f), false
	case *http2.PriorityFrame:
		// Priorities are not acted on (RFC 9113 §5.3.2 deprecates them), only checked.
		if f.StreamID == f.StreamDep {
			return http2.StreamError{StreamID: f.StreamID, Code: http2.ErrCodeProtocol}, false
		}
		return nil, false
	case *http2.GoAwayFrame:
		return nil, false // the peer opens no more streams; those in progress finish
	case *http2.PushPromiseFrame:
		return http2.ConnectionError(http2.ErrCodeProtocol), false // clients cannot push (§8.4)
	default:
		return nil, false // unknown frame types are ignored (§4.1); CONTINUATION is the Framer's
	}
}

func (c *conn) processSettings(f *http2.SettingsFrame) error {
	if f.IsAck() {
		return nil
	}
	if f.NumSettings() > maxSettingsPerFrame {
		return http2.ConnectionError(http2.ErrCodeEnhanceYourCalm)
	}
	if err := f.ForeachSetting(func(s http2.Setting) error { return s.Valid() }); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	err := f.ForeachSetting(func(s http2.Setting) error {
		switch s.ID {
		case http2.SettingInitialWindowSize:
			// The change applies to every stream's window (RFC 9113 §6.9.2).
			delta := int64(s.Val) - c.peerWindow
			c.peerWindow = int64(s.Val)
			for _, st := range c.streams {
				st.sendWindow += delta
				if st.sendWindow > maxWindow {
					return http2.ConnectionError(http2.ErrCodeFlowControl)
				}
			}
			c.cond.Broadcast()
			c.kickSenderLocked()
		case http2.SettingMaxFrameSize:
			c.peerMaxFrame = s.Val
		case http2.SettingHeaderTableSize:
			c.enc.SetMaxDynamicTableSizeLimit(s.Val)
		}
		return nil
	})
	if err != nil {
		return err
	}
	c.fr.WriteSettingsAck()
	return nil
}

func (c *conn) processWindowUpdate(f *http2.WindowUpdateFrame) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	inc := int64(f.Increment)
	if f.StreamID == 0 {
		if c.sendWindow+inc > maxWindow {
			return http2.ConnectionError(http2.ErrCodeFlowControl)
		}
		c.sendWindow += inc
		c.cond.Broadcast()
		c.kickSenderLocked()
		return nil
	}
	if f.StreamID > c.maxClientStreamID {
		return http2.ConnectionError(http2.ErrCodeProtocol) // an idle stream (§5.1)
	}
	st := c.streams[f.StreamID]
	if st == nil || st.reset {
		return nil // closed: the update may have crossed our END_STREAM
	}
	if st.sendWindow+inc > maxWindow {
		return http2.StreamError{StreamID: f.StreamID, Code: http2.ErrCodeFlowControl}
	}
	st.sendWindow += inc
	c.cond.Broadcast()
	if st.dbody != nil {
		c.kickSenderLocked()
	}
	return nil
}

func (c *conn) processPing(f *http2.PingFrame) error {
	if f.StreamID != 0 {
		return http2.ConnectionError(http2.ErrCodeProtocol)
	}
	if f.IsAck() {
		return nil // this server sends no PINGs
	}
	c.mu.Lock()
	c.fr.WritePing(true, f.Data)
	c.mu.Unlock()
	return nil
}

func (c *conn) processReset(f *http2.RSTStreamFrame) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if f.StreamID > c.maxClientStreamID {
		return http2.ConnectionError(http2.ErrCodeProtocol) // an idle stream (§5.1)
	}
	if st := c.streams[f.StreamID]; st != nil {
		st.markReset()
		c.closeStreamLocked(st)
	}
	return nil
}

// resetLocked sends RST_STREAM for id and forgets the stream.
func (c *conn) resetLocked(id uint32, code http2.ErrCode) {
	if st := c.streams[id]; st != nil {
		if st.reset {
			return // already reset: a second RST_STREAM is not sent (§5.4.2)
		}
		st.markReset()
		c.closeStreamLocked(st)
	}
	c.fr.WriteRSTStream(id, code)
}

// closeStreamLocked forgets st; its handler, if still running, sees it closed. A body given to
// SendBody and not yet sent ends here, and with it the stream's count in open.
func (c *conn) closeStreamLocked(st *stream) {
	delete(c.streams, st.id)
	if st.body != nil {
		st.body.closeWithErrorLocked(errStreamClosed)
	}
	if st.dbody != nil {
		st.dbody = nil
		c.releaseLocked()
	}
}

// releaseLocked notes that a stream no longer counts as open: its handler returned with the
// response complete, or its deferred body ended.
func (c *conn) releaseLocked() {
	c.open--
	if c.open == 0 {
		c.idleSince = time.Now()
		if c.shuttingDown {
			defer c.wakeReader()
		}
	}
}

// moveReader gives the reader role to a new goroutine: the caller, a handler that was run in
// line, is about to wait for the peer, or has written enough to leave the others their turn.
func (c *conn) moveReader(st *stream) {
	st.inline = false
	c.wg.Go(c.readLoop)
}

// startShutdown queues GOAWAY and lets the connection end once its streams are done. It does
// not write: the reader, woken, sends the GOAWAY (or the goroutine writing already does), so
// that a peer that does not read holds up no one but its own connection.
func (c *conn) startShutdown() {
	c.mu.Lock()
	c.shuttingDown = true
	if !c.goAwaySent && c.werr == nil {
		c.goAwaySent = true
		c.fr.WriteGoAway(c.maxClientStreamID, http2.ErrCodeNo, nil)
	}
	c.mu.Unlock()
	c.wakeReader()
}

// closeWith ends the connection: GOAWAY with code unless cause says the connection is already
// broken, then the socket is closed and every handler still running sees its stream gone.
func (c *conn) closeWith(code http2.ErrCode, cause error) {
	c.mu.Lock()
	if cause == nil && c.werr == nil {
		if !(c.goAwaySent && code == http2.ErrCodeNo) {
			c.goAwaySent = true
			c.fr.WriteGoAway(c.maxClientStreamID, code, nil)
		}
		if !c.writing {
			// The last words get goAwayTimeout. A write in progress is not waited for:
			// closing the socket below ends it.
			c.closing = true
			c.flushLocked()
		}
	}
	if c.werr == nil {
		c.werr = errConnClosed
	}
	c.releaseOutLocked()
	for _, st := range c.streams {
		st.markReset()
		c.closeStreamLocked(st)
	}
	c.sendq = nil
	c.cond.Broadcast()
	c.mu.Unlock()
	c.cancel()
	if tc, ok := c.nc.(*tls.Conn); ok {
		// tls.Conn's Close sends close_notify and waits up to 5 s for a peer that may not
		// read; the GOAWAY above already said goodbye, and HTTP/2's framing needs no
		// close_notify to tell a whole response from a cut one.
		tc.NetConn().Close()
	}
	c.nc.Close()
}

// moved notes progress on the connection (see keepReading).
func (c *conn) moved() { c.lastMoved.Store(time.Now().UnixNano()) }

// wakeReader makes a reader blocked in Read look at the connection's state again (a shutdown
// began, the last handler returned, a write failed). See connReader.
func (c *conn) wakeReader() {
	c.wake.Store(true)
	c.nc.SetReadDeadline(time.Unix(1, 0))
}

// connReader reads the socket for the Framer. A read deadline that passes while the
// connection should live on is re-armed here, below the Framer, so that no frame is cut.
type connReader struct{ c *conn }

func (r connReader) Read(p []byte) (int, error) {
	c := r.c
	for {
		if c.prefaceOK {
			c.armReadDeadline()
		}
		n, err := c.nc.Read(p)
		if n > 0 || err == nil {
			return n, err
		}
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() || !c.prefaceOK || !c.keepReading() {
			return n, err
		}
	}
}

// armReadDeadline sets the read deadline to when the connection's state must next be looked
// at (readDeadlineLocked). The deadline is absolute: frames that carry no request (PING,
// SETTINGS, WINDOW_UPDATE, PRIORITY, unknown types) do not move it.
func (c *conn) armReadDeadline() {
	if c.wake.Load() {
		return // a past deadline is set or about to be: let it fire
	}
	c.mu.Lock()
	d := c.readDeadlineLocked()
	c.mu.Unlock()
	// A deadline earlier than needed only wakes keepReading, which re-arms; so the one set
	// stands unless it is later than needed or none is set. A connection whose streams come
	// and go then moves its timer once per check, not at every burst.
	if c.armed && !c.armedFor.IsZero() && (d.IsZero() || !c.armedFor.After(d)) {
		return
	}
	if c.armed && c.armedFor.IsZero() && d.IsZero() {
		return
	}
	c.armed, c.armedFor = true, d
	c.nc.SetReadDeadline(d)
}

// readDeadlineLocked is when the reader must next look at the connection: IdleTimeout after
// the last stream ended when none is open, otherwise the next check for stalled streams.
func (c *conn) readDeadlineLocked() time.Time {
	if c.open == 0 {
		if c.lim.idle > 0 {
			return c.idleSince.Add(c.lim.idle)
		}
		return time.Time{}
	}
	if c.lastCheck.IsZero() {
		c.lastCheck = time.Now()
	}
	return c.lastCheck.Add(c.checkEvery)
}

// keepReading decides, when a read deadline passed, whether the connection lives on. It
// sends what was queued meanwhile (a GOAWAY from startShutdown) and resets streams stalled
// for SendTimeout.
func (c *conn) keepReading() bool {
	c.wake.Store(false)
	c.armed = false
	c.mu.Lock()
	defer c.mu.Unlock()
	c.flushLocked()
	now := time.Now()
	switch {
	case c.werr != nil:
		return false
	case c.shuttingDown && c.open == 0:
		return false
	case c.lim.idle > 0 && c.open == 0 && now.Sub(c.idleSince) >= c.lim.idle:
		c.srv.stats().IdleConns.Add(1)
		return false
	case c.open == 0:
		return true
	}
	if now.Sub(c.lastCheck) < c.checkEvery {
		return true
	}
	c.lastCheck = now
	if !c.reapStalledLocked(now) {
		return false
	}
	if c.lim.idle > 0 && now.Sub(time.Unix(0, c.lastMoved.Load())) >= c.lim.idle {
		// Streams open, but nothing moved either way: no request, body data or window
		// from the peer, no response data to it (a handler waiting for a request body
		// that does not come).
		return false
	}
	return true
}

// reapStalledLocked resets the streams that have had a response to send and no flow-control
// window for SendTimeout. When that is every open stream and nothing else moved on the
// connection for as long (no request, no response data), it reports false: the connection is
// closed instead, its peer takes nothing.
func (c *conn) reapStalledLocked(now time.Time) bool {
	var stalled []*stream
	for _, st := range c.streams {
		if st.dbody == nil && st.stalledSince.IsZero() {
			continue // no response waiting for window
		}
		if min(c.sendWindow, st.sendWindow) > 0 {
			st.stalledSince = time.Time{} // the sender or the handler is on it
			continue
		}
		if st.stalledSince.IsZero() {
			st.stalledSince = now // a body queued behind a spent connection window
			continue
		}
		if now.Sub(st.stalledSince) >= c.sendTimeout {
			stalled = append(stalled, st)
		}
	}
	if len(stalled) == 0 {
		return true
	}
	if uint32(len(stalled)) >= c.open && now.Sub(time.Unix(0, c.lastMoved.Load())) >= c.sendTimeout {
		c.srv.stats().StalledConns.Add(1)
		c.srv.logs().stalled.Hit(c.ctx, slog.String("remote", c.remoteAddr), slog.Int("streams", len(stalled)), slog.Duration("send_timeout", c.sendTimeout))
		return false
	}
	c.srv.stats().StreamsReaped.Add(uint64(len(stalled)))
	c.srv.logs().reaped.Hit(c.ctx, slog.String("remote", c.remoteAddr), slog.Int("streams", len(stalled)), slog.Duration("send_timeout", c.sendTimeout))
	for _, st := range stalled {
		c.resetLocked(st.id, http2.ErrCodeCancel)
	}
	c.flushLocked()
	return true
}

// tlsAcceptable applies RFC 9113 §9.2: TLS 1.2 or later, and with TLS 1.2 an ephemeral key
// exchange and an AEAD cipher.
func tlsAcceptable(st *tls.ConnectionState) bool {
	if st.Version >= tls.VersionTLS13 {
		return true
	}
	if st.Version < tls.VersionTLS12 {
		return false
	}
	switch st.CipherSuite {
	case tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
		tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256:
		return true
	}
	return false
}
