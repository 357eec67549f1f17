package httpserve

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dt-cdn/dt/internal/burstlog"
	"github.com/dt-cdn/dt/internal/connlimit"
	"github.com/dt-cdn/dt/internal/h1"
	"github.com/dt-cdn/dt/internal/h2"
	"github.com/dt-cdn/dt/internal/sendconn"
)

// Server serves one Handler on any number of listeners, each with its own Serve call, under
// one Config: one set of connection caps and one count of send timeouts over all of them. It
// has no timeout on a whole response: a 10 MiB file to a slow phone takes as long as it takes;
// a connection where nothing moves is closed (see Config's timeouts). Its methods are safe for
// use by several goroutines.
type Server struct {
	cfg     Config
	log     *slog.Logger
	conns   *connlimit.Limiter // nil without Config.ConnCaps; shared by every listener
	h2stats h2.Stats           // the limits' hits of every h2.Server this Server runs
	// sendTimeouts counts the connections SendTimeout closed, on every listener.
	sendTimeouts   prometheus.Counter
	logSendTimeout *burstlog.Logger
}

// New checks cfg, registers the Server's metrics and returns it. It fails with
// ErrInvalidConfig for a Config it cannot run with.
func New(cfg Config) (*Server, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: cmp.Or(cfg.Logger, slog.New(slog.DiscardHandler))}
	s.cfg.ReadHeaderTimeout = cmp.Or(cfg.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	s.cfg.IdleTimeout = cmp.Or(cfg.IdleTimeout, DefaultIdleTimeout)
	s.cfg.MaxHeaderBytes = cmp.Or(cfg.MaxHeaderBytes, DefaultMaxHeaderBytes)
	s.cfg.ShutdownTimeout = cmp.Or(cfg.ShutdownTimeout, DefaultShutdownTimeout)
	s.cfg.SendTimeout = cmp.Or(cfg.SendTimeout, DefaultSendTimeout)
	if cfg.ConnCaps != nil {
		cc := *cfg.ConnCaps
		cc.Registerer = cmp.Or(cc.Registerer, cfg.Registerer)
		cc.Subsystem = cmp.Or(cc.Subsystem, cfg.Subsystem)
		cc.Logger = cmp.Or(cc.Logger, s.log)
		lim, err := connlimit.New(cc)
		if err != nil {
			return nil, fmt.Errorf("httpserve: %w", err)
		}
		s.conns = lim
	}
	s.sendTimeouts = prometheus.NewCounter(prometheus.CounterOpts{Namespace: "dt", Subsystem: cfg.Subsystem,
		Name: "send_timeouts_total", Help: "Visitor connections closed because the client took nothing of a write for the send timeout."})
	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(s.sendTimeouts); err != nil {
			return nil, fmt.Errorf("httpserve: register metrics: %w", err)
		}
	}
	s.logSendTimeout = &burstlog.Logger{Log: s.log, Level: slog.LevelWarn,
		Msg: "Closing connections whose client stopped reading (send timeout)"}
	return s, nil
}

// check returns what makes cfg unusable, or nil.
func (cfg *Config) check() error {
	var errs []error
	if cfg.Handler == nil {
		errs = append(errs, fmt.Errorf("%w: no Handler", ErrInvalidConfig))
	}
	if cfg.ReadHeaderTimeout < 0 || cfg.IdleTimeout < 0 || cfg.ShutdownTimeout < 0 || cfg.SendTimeout < 0 {
		errs = append(errs, fmt.Errorf("%w: negative timeout", ErrInvalidConfig))
	}
	if cfg.MaxHeaderBytes < 0 {
		errs = append(errs, fmt.Errorf("%w: negative MaxHeaderBytes", ErrInvalidConfig))
	}
	if cc := cfg.ConnCaps; cc != nil && (cc.MaxConns < 0 || cc.MaxConnsPerAddr < 0) {
		errs = append(errs, fmt.Errorf("%w: negative connection cap", ErrInvalidConfig))
	}
	if cfg.Registerer != nil && cfg.Subsystem == "" {
		errs = append(errs, fmt.Errorf("%w: a Registerer without a Subsystem", ErrInvalidConfig))
	}
	return errors.Join(errs...)
}

// H2Stats returns the counts of the HTTP/2 limits' hits over every listener (package h2; zero
// with StdHTTP2).
func (s *Server) H2Stats() *h2.Stats { return &s.h2stats }

// Limit returns ln with its connections counted against the Server's caps, for a listener
// another server runs (an ACME challenge responder, say); ln itself without ConnCaps. Serve
// does this to its listener itself.
func (s *Server) Limit(ln net.Listener) net.Listener {
	if s.conns == nil {
		return ln
	}
	return s.conns.Listener(ln)
}

// ConnStats returns the counts of the Server's connection caps (zero without ConnCaps).
func (s *Server) ConnStats() connlimit.Stats {
	if s.conns == nil {
		return connlimit.Stats{}
	}
	return s.conns.Stats()
}

// Serve serves HTTP on ln until ctx is done, then shuts down gracefully: it stops accepting,
// lets requests in flight finish for up to ShutdownTimeout, then closes what is left. With a
// nil tlsConfig it speaks plain HTTP/1.x; otherwise TLS with HTTP/2 and HTTP/1.1 by ALPN
// (tlsConfig is cloned, not modified). Connections past the caps are reset at accept. Serve
// closes ln. It returns nil after a shutdown caused by ctx, or the error that stopped it.
func (s *Server) Serve(ctx context.Context, ln net.Listener, tlsConfig *tls.Config) error {
	srv := s.newHTTPServer(tlsConfig)
	ln = s.Limit(ln)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("httpserve: serve %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		s.log.LogAttrs(context.Background(), slog.LevelWarn, "Closing connections still busy at shutdown",
			slog.String("addr", ln.Addr().String()), slog.Any("error", err))
		srv.Close()
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("httpserve: serve %s: %w", ln.Addr(), err)
	}
	return nil
}

// httpServer is what Serve runs: an *h1.Server or a stdServer.
type httpServer interface {
	Serve(net.Listener) error
	Shutdown(context.Context) error
	Close() error
}

// newHTTPServer returns the server for a listener: h1 for plain HTTP, net/http with h2 for TLS
// (h1 does not negotiate TLS), net/http alone when the configuration asks for it.
func (s *Server) newHTTPServer(tlsConfig *tls.Config) httpServer {
	if tlsConfig == nil && !s.cfg.StdHTTP1 {
		return s.newH1()
	}
	srv := &http.Server{
		Handler:           s.cfg.Handler,
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		MaxHeaderBytes:    s.cfg.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		ConnContext:       sendconn.ConnContext,
	}
	if tlsConfig != nil {
		srv.TLSConfig = withALPN(tlsConfig)
		s.configureHTTP2(srv)
	}
	return stdServer{srv, s}
}

// newH1 returns package h1's server. Connections are left as the listener gives them, a
// *net.TCPConn in the caps' wrapper, which h1 writes with writev and sendfile: it gathers a
// response's writes and bounds them with SendTimeout itself (no sendconn.Conn).
func (s *Server) newH1() *h1.Server {
	return &h1.Server{
		Handler:           s.cfg.Handler,
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		SendTimeout:       s.cfg.SendTimeout,
		OnSendTimeout:     s.sendTimedOut,
		MaxHeaderBytes:    s.cfg.MaxHeaderBytes,
		Logger:            s.log,
		ConnContext:       sendconn.ConnContext,
	}
}

// withALPN returns a copy of tc that offers HTTP/2 and HTTP/1.1 by ALPN, after the protocols
// tc already offers (an ACME TLS-ALPN challenge's, say).
func withALPN(tc *tls.Config) *tls.Config {
	tc = tc.Clone()
	for _, p := range []string{"h2", "http/1.1"} {
		if !slices.Contains(tc.NextProtos, p) {
			tc.NextProtos = append(tc.NextProtos, p)
		}
	}
	return tc
}

// configureHTTP2 has srv speak HTTP/2 by package h2, or by net/http's own server with StdHTTP2.
func (s *Server) configureHTTP2(srv *http.Server) {
	if !s.cfg.StdHTTP2 {
		h2s := &h2.Server{IdleTimeout: s.cfg.IdleTimeout, SendTimeout: s.cfg.SendTimeout, Stats: &s.h2stats, Logger: s.log}
		h2s.Configure(srv)
		return
	}
	// net/http's HTTP/2 server with the bounds h2 has where it offers them: a write that takes
	// no byte for SendTimeout ends the connection, and streams are capped as h2's are. Its idle
	// timeout counts streams, not PINGs.
	srv.HTTP2 = &http.HTTP2Config{
		MaxConcurrentStreams: h2.DefaultMaxConcurrentStreams,
		WriteByteTimeout:     s.cfg.SendTimeout,
	}
}

// sendTimedOut counts and logs a connection SendTimeout closed.
func (s *Server) sendTimedOut() {
	s.sendTimeouts.Inc()
	s.logSendTimeout.Hit(context.Background(), slog.Duration("send_timeout", s.cfg.SendTimeout))
}

// stdServer serves net/http's way, on connections that can be corked and whose writes are
// bounded by SendTimeout per step (sendconn.Conn), with TLS when it has a configuration.
// net/http bounds the TLS handshake by ReadHeaderTimeout.
type stdServer struct {
	*http.Server
	s *Server
}

func (ss stdServer) Serve(ln net.Listener) error {
	ln = sendconn.Listener{Listener: ln, Timeout: ss.s.cfg.SendTimeout, Expired: ss.s.sendTimedOut}
	if ss.TLSConfig != nil {
		return ss.ServeTLS(ln, "", "")
	}
	return ss.Server.Serve(ln)
}
