package h2

import (
	"bufio"
	"cmp"
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/dt-cdn/dt/internal/burstlog"
)

// Server serves HTTP/2 connections. Set it up on an http.Server with Configure; its zero
// value is ready to use, and its fields must not change once it serves.
type Server struct {
	// MaxConcurrentStreams is the number of requests a client may have in progress on one
	// connection, announced in SETTINGS_MAX_CONCURRENT_STREAMS. A request counts until its
	// handler returns, even when the client resets it, so resets cannot pile up handlers.
	// Zero means 128 (nginx's default).
	MaxConcurrentStreams uint32
	// InlineLimit is how many body bytes a handler may write on the connection's reading
	// goroutine before it moves to a goroutine of its own. Zero means 64 KiB: a page or an
	// asset is answered in line, a large download is not.
	InlineLimit int
	// IdleTimeout closes a connection this long after its last stream ended (or its preface)
	// when no stream is open, whatever other frames it sends, and one with streams open where
	// nothing has moved either way for this long: no request, request body data or window
	// update from the client, no response data to it (PINGs do not count). Zero means the
	// http.Server's IdleTimeout, then its ReadTimeout; if those are zero too, connections
	// never time out.
	IdleTimeout time.Duration
	// SendTimeout bounds how long the peer may take nothing: every socket write has this
	// deadline, moved forward at each write so that a slow download that keeps moving lives;
	// a stream that has a response to send and no flow-control window is reset after it (a
	// connection whose open streams are all like that is closed). Zero means 1 minute, as
	// internal/h1's SendTimeout and nginx's send_timeout.
	SendTimeout time.Duration
	// MaxQueuedControlFrames bounds the control frames (PING and SETTINGS acks, RST_STREAM,
	// WINDOW_UPDATE) queued while a write to the peer is blocked: a peer that sends them
	// without reading is closed past it. Zero means 10,000 (net/http's HTTP/2 server's
	// bound); at 17 bytes a frame at most, it holds the queue under 200 KB.
	MaxQueuedControlFrames int
	// MaxContinuationFrames bounds the CONTINUATION frames of one header block, empty ones
	// included: the Framer bounds only the block's size, and empty frames have none. Past
	// it the connection is closed with ENHANCE_YOUR_CALM. Zero means 16, which carries a
	// header block of 256 KiB at the smallest frame size (no real client splits a block
	// that finely); negative means no bound.
	MaxContinuationFrames int
	// SendMemory bounds the memory all the Server's connections use to send bodies given
	// to SendBody: each connection sending one holds sendSlot bytes of it (an output
	// buffer being written, one being filled, a read buffer). Past it, connections wait for
	// their turn: downloads slow down, none fails. Zero means 128 MiB, about 900 connections
	// sending at once; a connection with only small answers never waits for it.
	SendMemory int64
	// Stats, if set, receives the counts of the limits' hits; several Servers may share one.
	// Nil: the Server keeps its own (see Server.Counters).
	Stats *Stats
	// Logger receives handler panics and protocol errors at debug level, and each limit's
	// hits once per burst (internal/burstlog) at warn level. Nil discards them.
	Logger *slog.Logger

	mu           sync.Mutex
	conns        map[*conn]struct{}
	shuttingDown bool
	date         atomic.Pointer[dateValue]

	initOnce sync.Once
	own      Stats
	limitLog limitLogs
	slots    chan struct{} // the SendMemory budget, a token per connection sending
}

// Stats counts the hits of a Server's limits. Its fields may be read at any time.
type Stats struct {
	// StreamsReaped counts streams reset after SendTimeout with a response to send and no
	// flow-control window.
	StreamsReaped atomic.Uint64
	// StalledConns counts connections closed because all their open streams were stalled
	// for SendTimeout.
	StalledConns atomic.Uint64
	// WriteTimeouts counts connections closed because a write to the peer did not finish
	// within SendTimeout (a peer that stopped reading).
	WriteTimeouts atomic.Uint64
	// IdleConns counts connections closed after IdleTimeout with no request.
	IdleConns atomic.Uint64
	// ControlFloods counts connections closed past MaxQueuedControlFrames.
	ControlFloods atomic.Uint64
	// ContinuationFloods counts connections closed past MaxContinuationFrames.
	ContinuationFloods atomic.Uint64
	// SendMemoryWaits counts the times a connection waited for SendMemory.
	SendMemoryWaits atomic.Uint64
}

// limitLogs logs each limit's hits once per burst.
type limitLogs struct {
	reaped, stalled, writeTimeout, controlFlood, continuationFlood, sendMemory *burstlog.Logger
}

func (s *Server) init() {
	s.initOnce.Do(func() {
		lg := func(msg string) *burstlog.Logger {
			return &burstlog.Logger{Log: s.Logger, Level: slog.LevelWarn, Msg: msg}
		}
		s.limitLog = limitLogs{
			reaped:            lg("HTTP/2 streams reset: no flow-control window for SendTimeout"),
			stalled:           lg("HTTP/2 connections closed: every stream without window for SendTimeout"),
			writeTimeout:      lg("HTTP/2 connections closed: the peer took nothing for SendTimeout"),
			controlFlood:      lg("HTTP/2 connections closed: too many control frames queued for a peer that does not read"),
			continuationFlood: lg("HTTP/2 connections closed: too many CONTINUATION frames in a header block"),
			sendMemory:        lg("HTTP/2 send memory exhausted: connections wait their turn"),
		}
		n := cmp.Or(s.SendMemory, DefaultSendMemory) / sendSlot
		s.slots = make(chan struct{}, max(n, 1))
	})
}

func (s *Server) stats() *Stats {
	if s.Stats != nil {
		return s.Stats
	}
	return &s.own
}

func (s *Server) logs() *limitLogs {
	s.init()
	return &s.limitLog
}

// Counters returns the Stats the Server counts into.
func (s *Server) Counters() *Stats { return s.stats() }

// acquireSend takes a share of SendMemory for a connection about to send a body, waiting
// while all are taken; it reports false when ctx ended first.
func (s *Server) acquireSend(ctx context.Context, remote string) bool {
	s.init()
	select {
	case s.slots <- struct{}{}:
		return true
	default:
	}
	s.stats().SendMemoryWaits.Add(1)
	s.limitLog.sendMemory.Hit(ctx, slog.String("remote", remote), slog.Int("connections", cap(s.slots)))
	select {
	case s.slots <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

func (s *Server) releaseSend() { <-s.slots }

// Defaults of Server.
const (
	DefaultMaxConcurrentStreams   = 128
	DefaultInlineLimit            = 64 << 10
	DefaultSendTimeout            = time.Minute
	DefaultMaxQueuedControlFrames = 10000
	DefaultMaxContinuationFrames  = 16
	DefaultSendMemory             = 128 << 20
)

// sendSlot is the SendMemory a connection sending a body holds: the output buffer being
// written, the one being filled, and the sender's read buffer.
const sendSlot = 2*outBufferSize + sendChunk

const (
	// defaultMaxHeaderList bounds a request's decoded header list when the http.Server does
	// not (net/http's default MaxHeaderBytes).
	defaultMaxHeaderList = 1 << 20
	// prefaceTimeout bounds the time a new connection has to send its preface and SETTINGS.
	prefaceTimeout = 10 * time.Second
	// goAwayTimeout bounds the last write to a connection being closed on error.
	goAwayTimeout = time.Second
)

// Configure makes hs serve HTTP/2 with s on the TLS connections that negotiate "h2", and
// announce GOAWAY on its graceful Shutdown. When hs.TLSConfig is set and lacks "h2" in
// NextProtos, it is replaced by a copy that has it. Call it before hs serves.
func (s *Server) Configure(hs *http.Server) {
	if hs.TLSNextProto == nil {
		hs.TLSNextProto = make(map[string]func(*http.Server, *tls.Conn, http.Handler))
	}
	hs.TLSNextProto[http2.NextProtoTLS] = s.serveTLS
	hs.RegisterOnShutdown(s.shutdown)
	if hs.TLSConfig != nil && !slices.Contains(hs.TLSConfig.NextProtos, http2.NextProtoTLS) {
		hs.TLSConfig = hs.TLSConfig.Clone() // it may be shared with other servers
		hs.TLSConfig.NextProtos = append([]string{http2.NextProtoTLS}, hs.TLSConfig.NextProtos...)
	}
}

// serveTLS is the http.Server's TLSNextProto hook for "h2". The http.Server counts the
// connection active until this returns, so its Shutdown waits for requests in flight.
func (s *Server) serveTLS(hs *http.Server, tc *tls.Conn, h http.Handler) {
	ctx := context.Background()
	// net/http's handler for this hook carries the connection's context (ConnContext,
	// ServerContextKey, LocalAddrContextKey).
	if bc, ok := h.(interface{ BaseContext() context.Context }); ok {
		ctx = bc.BaseContext()
	}
	lim := limits{
		idle:          cmp.Or(s.IdleTimeout, hs.IdleTimeout, hs.ReadTimeout),
		maxHeaderList: uint32(cmp.Or(hs.MaxHeaderBytes, defaultMaxHeaderList)),
	}
	s.serve(ctx, tc, h, lim)
}

// ServeConn serves HTTP/2 on nc until the peer goes away or ctx is done: over TLS when nc is a
// *tls.Conn whose handshake chose "h2", otherwise as HTTP/2 with prior knowledge (RFC 9113
// §3.3), the client's first bytes being the connection preface. It closes nc before it returns.
func (s *Server) ServeConn(ctx context.Context, nc net.Conn, h http.Handler) {
	s.serve(ctx, nc, h, limits{idle: s.IdleTimeout, maxHeaderList: defaultMaxHeaderList})
}

// limits are the per-connection limits taken from the Server and the http.Server.
type limits struct {
	idle          time.Duration
	maxHeaderList uint32
}

func (s *Server) serve(ctx context.Context, nc net.Conn, h http.Handler, lim limits) {
	defer nc.Close()
	c := s.newConn(ctx, nc, h, lim)
	if !s.track(c) {
		c.closeWith(http2.ErrCodeNo, nil) // the server is shutting down
		return
	}
	defer s.untrack(c)
	// A done ctx ends the connection as a server shutdown would.
	stop := context.AfterFunc(ctx, c.startShutdown)
	defer stop()
	c.wg.Go(c.run)
	c.wg.Wait()
	c.cancel()
	c.br.Reset(nil)
	brPool.Put(c.br)
}

func (s *Server) newConn(ctx context.Context, nc net.Conn, h http.Handler, lim limits) *conn {
	c := &conn{
		srv:          s,
		nc:           nc,
		h:            h,
		lim:          lim,
		log:          cmp.Or(s.Logger, slog.New(slog.DiscardHandler)),
		remoteAddr:   nc.RemoteAddr().String(),
		streams:      make(map[uint32]*stream),
		sendWindow:   initialWindow,
		recvWindow:   initialWindow,
		peerWindow:   initialWindow,
		peerMaxFrame: minMaxFrameSize,
		maxStreams:   cmp.Or(s.MaxConcurrentStreams, DefaultMaxConcurrentStreams),
		inlineLimit:  cmp.Or(s.InlineLimit, DefaultInlineLimit),
	}
	if s.InlineLimit < 0 {
		c.inlineLimit = 0
	}
	c.sendTimeout = cmp.Or(s.SendTimeout, DefaultSendTimeout)
	c.maxCtrl = cmp.Or(s.MaxQueuedControlFrames, DefaultMaxQueuedControlFrames)
	// Stalls are looked for four times per SendTimeout (or IdleTimeout, if shorter), so a
	// stalled stream is reset within 1.25 times it.
	c.checkEvery = c.sendTimeout
	if lim.idle > 0 {
		c.checkEvery = min(c.checkEvery, lim.idle)
	}
	c.checkEvery = min(max(c.checkEvery/4, 10*time.Millisecond), 15*time.Second)
	c.ctx, c.cancel = context.WithCancel(ctx)
	c.cond.L = &c.mu
	if tc, ok := nc.(*tls.Conn); ok {
		st := tc.ConnectionState()
		c.tls = &st
	}
	c.br = brPool.Get().(*bufio.Reader)
	c.br.Reset(connReader{c})
	var fr io.Reader = brReader{c}
	if maxCont := cmp.Or(s.MaxContinuationFrames, DefaultMaxContinuationFrames); maxCont > 0 {
		c.frames = &frameCounter{r: fr, maxContinuations: maxCont}
		fr = c.frames
	}
	c.fr = http2.NewFramer(outWriter{c}, fr)
	c.fr.ReadMetaHeaders = hpack.NewDecoder(initialHeaderTableSize, nil)
	c.fr.MaxHeaderListSize = lim.maxHeaderList
	c.fr.SetMaxReadFrameSize(minMaxFrameSize) // the default this server announces
	c.fr.SetReuseFrames()
	c.enc = hpack.NewEncoder(&c.hbuf)
	c.lastMoved.Store(time.Now().UnixNano())
	c.idleSince = time.Now()
	s.init()
	return c
}

// track registers c for shutdown; it reports false when the server is already shutting down.
func (s *Server) track(c *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shuttingDown {
		return false
	}
	if s.conns == nil {
		s.conns = make(map[*conn]struct{})
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *Server) untrack(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// shutdown starts a graceful shutdown of every connection: GOAWAY, then each ends once its
// requests in progress are answered. It is registered with http.Server.RegisterOnShutdown.
func (s *Server) shutdown() {
	s.mu.Lock()
	s.shuttingDown = true
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.startShutdown()
	}
}

// dateValue is a Date field value, formatted once a second for all connections.
type dateValue struct {
	unix  int64
	value string
}

func (s *Server) dateField(now time.Time) string {
	sec := now.Unix()
	if d := s.date.Load(); d != nil && d.unix == sec {
		return d.value
	}
	d := &dateValue{unix: sec, value: now.UTC().Format(http.TimeFormat)}
	s.date.Store(d)
	return d.value
}
