package h1

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Server serves HTTP/1.x connections. Its zero value serves with no limits but
// DefaultMaxHeaderBytes; its fields must not change once it serves.
type Server struct {
	// Handler answers every request.
	Handler http.Handler
	// ReadHeaderTimeout bounds the time from the first byte of a request (from the accept, for
	// a connection's first request) to the end of its header section. Zero means no limit.
	ReadHeaderTimeout time.Duration
	// IdleTimeout closes a connection that waits this long for its next request, or for more
	// of a request body its handler reads. Zero means no limit.
	IdleTimeout time.Duration
	// SendTimeout closes a connection whose client takes nothing of a response for this long,
	// as nginx's send_timeout: a slow client is fine, a stalled one is not. Zero means no
	// limit.
	SendTimeout time.Duration
	// OnSendTimeout, if set, is called once for each connection SendTimeout closes, to count
	// and log them. It must not block.
	OnSendTimeout func()
	// MaxHeaderBytes bounds a request's line and header section; a larger one is answered 431.
	// Zero means DefaultMaxHeaderBytes.
	MaxHeaderBytes int
	// Logger receives handler panics at error level and protocol errors at debug level. Nil
	// discards them.
	Logger *slog.Logger
	// DisableGeneralOptionsHandler passes "OPTIONS *" requests to Handler; otherwise they are
	// answered 200 with an empty body, as net/http's server does.
	DisableGeneralOptionsHandler bool
	// ConnContext, if set, derives the context of a connection's requests from the server's
	// (which carries http.LocalAddrContextKey).
	ConnContext func(ctx context.Context, c net.Conn) context.Context

	mu        sync.Mutex
	listeners map[*net.Listener]struct{}
	conns     map[*conn]struct{}
	closing   atomic.Bool
	dateCache atomic.Pointer[dateValue]
}

// DefaultMaxHeaderBytes is net/http's default bound on a request's header section.
const DefaultMaxHeaderBytes = http.DefaultMaxHeaderBytes

// Serve accepts connections on l and serves each on a goroutine of its own, until Shutdown or
// Close, after which it returns http.ErrServerClosed. Other errors from l end it too; it closes
// l before it returns.
func (s *Server) Serve(l net.Listener) error {
	if !s.trackListener(&l, true) {
		l.Close()
		return http.ErrServerClosed
	}
	defer s.trackListener(&l, false)
	defer l.Close()
	var delay time.Duration
	for {
		nc, err := l.Accept()
		if err != nil {
			if s.closing.Load() {
				return http.ErrServerClosed
			}
			if !temporary(err) {
				return fmt.Errorf("h1: accept: %w", err)
			}
			// Out of file descriptors or memory: back off as net/http does, rather than spin.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			s.logger().LogAttrs(context.Background(), slog.LevelWarn, "Accept failed; retrying",
				slog.Duration("delay", delay), slog.Any("error", err))
			time.Sleep(delay)
			continue
		}
		delay = 0
		c := s.newConn(context.Background(), nc)
		if !s.track(c) {
			nc.Close()
			return http.ErrServerClosed
		}
		go func() {
			defer s.untrack(c)
			c.serve()
		}()
	}
}

// ServeConn serves HTTP/1.x on nc until the client or the handler ends the connection, or ctx is
// done (which closes nc). It closes nc before it returns.
func (s *Server) ServeConn(ctx context.Context, nc net.Conn) {
	c := s.newConn(ctx, nc)
	if !s.track(c) {
		nc.Close()
		return
	}
	defer s.untrack(c)
	stop := context.AfterFunc(ctx, func() { nc.Close() })
	defer stop()
	c.serve()
}

// temporary reports whether an Accept error passes with time.
func temporary(err error) bool {
	for _, e := range []error{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM, syscall.ECONNABORTED} {
		if errors.Is(err, e) {
			return true
		}
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// Shutdown stops the server gracefully: it closes the listeners, then closes each connection
// once it waits for a request (a response in progress is finished, with "Connection: close"),
// until none is left or ctx is done, when it returns ctx's error (Close then ends the rest).
func (s *Server) Shutdown(ctx context.Context) error {
	s.closing.Store(true)
	s.closeListeners()
	poll := time.Millisecond
	timer := time.NewTimer(poll)
	defer timer.Stop()
	for {
		if s.wakeIdle() == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
			poll = min(2*poll, 100*time.Millisecond)
			timer.Reset(poll)
		}
	}
}

// Close closes the listeners and every connection at once.
func (s *Server) Close() error {
	s.closing.Store(true)
	s.closeListeners()
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.nc.Close()
	}
	return nil
}

func (s *Server) trackListener(l *net.Listener, add bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !add {
		delete(s.listeners, l)
		return true
	}
	if s.closing.Load() {
		return false
	}
	if s.listeners == nil {
		s.listeners = make(map[*net.Listener]struct{})
	}
	s.listeners[l] = struct{}{}
	return true
}

func (s *Server) closeListeners() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for l := range s.listeners {
		(*l).Close()
	}
}

// track registers c for Shutdown and Close; it reports false once the server is closing.
func (s *Server) track(c *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing.Load() {
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

// wakeIdle makes every connection that waits for a request stop waiting (its reader sees the
// server closing and ends it), and returns how many connections are left.
func (s *Server) wakeIdle() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		if c.idle.Load() {
			c.nc.SetReadDeadline(time.Now())
		}
	}
	return len(s.conns)
}

func (s *Server) logger() *slog.Logger {
	if s.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Logger
}

// dateValue is a Date field value, formatted once a second for all connections.
type dateValue struct {
	unix  int64
	value []byte
}

// dateLen is the length of a Date field value (http.TimeFormat, RFC 9110 §5.6.7).
const dateLen = len("Mon, 02 Jan 2006 15:04:05 GMT")

// date returns the Date field value for now.
func (s *Server) date(now time.Time) []byte {
	sec := now.Unix()
	d := s.dateCache.Load()
	if d == nil || d.unix != sec {
		d = &dateValue{unix: sec, value: now.UTC().AppendFormat(nil, http.TimeFormat)}
		s.dateCache.Store(d)
	}
	return d.value
}
