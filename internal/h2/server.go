package h2

import (
	"bufio"
	"cmp"
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
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
	// IdleTimeout closes a connection with no request in progress for this long, and one
	// with requests in progress where nothing has moved either way for this long: no request,
	// request body data or window update from the client, no response data to it (PINGs do
	// not count). Zero means the http.Server's
	// IdleTimeout, then its ReadTimeout; if those are zero too, connections never time out.
	IdleTimeout time.Duration
	// Logger receives handler panics and protocol errors at debug level. Nil discards them.
	Logger *slog.Logger

	mu           sync.Mutex
	conns        map[*conn]struct{}
	shuttingDown bool
	date         atomic.Pointer[dateValue]
}

// Defaults of Server.
const (
	DefaultMaxConcurrentStreams = 128
	DefaultInlineLimit          = 64 << 10
)

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
	c.ctx, c.cancel = context.WithCancel(ctx)
	c.cond.L = &c.mu
	if tc, ok := nc.(*tls.Conn); ok {
		st := tc.ConnectionState()
		c.tls = &st
	}
	c.br = bufio.NewReaderSize(connReader{c}, readBufferSize)
	c.fr = http2.NewFramer(outWriter{c}, c.br)
	c.fr.ReadMetaHeaders = hpack.NewDecoder(initialHeaderTableSize, nil)
	c.fr.MaxHeaderListSize = lim.maxHeaderList
	c.fr.SetMaxReadFrameSize(minMaxFrameSize) // the default this server announces
	c.fr.SetReuseFrames()
	c.enc = hpack.NewEncoder(&c.hbuf)
	c.lastMoved.Store(time.Now().UnixNano())
	c.idleSince = time.Now()
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
