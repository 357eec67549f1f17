package edge

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
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/dt-cdn/dt/internal/burstlog"
	"github.com/dt-cdn/dt/internal/connlimit"
	"github.com/dt-cdn/dt/internal/h1"
	"github.com/dt-cdn/dt/internal/h2"
	"github.com/dt-cdn/dt/internal/sendconn"
)

// Config configures a Server. Zero fields take the defaults given with each; New does not
// modify the Config.
type Config struct {
	// Logger receives the server's log lines. Nil discards them.
	Logger *slog.Logger
	// Observer, if set, is told about every response of the site (see Observer).
	Observer Observer
	// Routes, if set, registers the node's own routes before the site (see HandlerConfig).
	Routes func(r chi.Router)

	// ReadHeaderTimeout bounds the time to read a request's headers, so that slow-loris
	// clients cannot hold connections. Zero means 10 s.
	ReadHeaderTimeout time.Duration
	// IdleTimeout closes keep-alive connections idle this long. Zero means 2 minutes.
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds the request line and headers. Zero means 64 KiB: a static site
	// needs no more, and a smaller limit than net/http's 1 MiB bounds memory per connection.
	MaxHeaderBytes int
	// ShutdownTimeout is how long Serve waits for requests in flight once its context is done,
	// before closing their connections. Zero means 10 s.
	ShutdownTimeout time.Duration
	// SendTimeout closes a connection whose client takes no bytes of a response for this long
	// (nginx's send_timeout): a slow download goes on, a stalled one does not hold its
	// connection. It bounds every write, plain HTTP/1.x and TLS alike (see internal/sendconn). Zero
	// means 1 minute.
	SendTimeout time.Duration

	// MaxConns caps the visitor connections open at once over all the listeners Serve runs
	// on (nginx's worker_connections); a connection past it is reset at accept, before its TLS
	// handshake. The cap in force is lower when the descriptor limit leaves less room (see
	// FDReserve). Zero means connlimit.DefaultMaxConns (10,000; connlimit says why).
	MaxConns int
	// MaxConnsPerIP caps the visitor connections open at once from one IPv4 address or one
	// IPv6 /64 (nginx's limit_conn). Zero means connlimit.DefaultMaxConnsPerAddr (256: room
	// for a busy NAT).
	MaxConnsPerIP int
	// FDReserve is how many of the process's descriptors visitors cannot take: what the node's
	// peer links, database and files need. MaxConns is held to (descriptor limit −
	// FDReserve) / 2, since a visitor connection may hold a file open besides its socket. Zero
	// means connlimit.DefaultFDReserve (1,024); negative means no bound from the descriptor
	// limit.
	FDReserve int
	// Registerer receives the connection metrics (dt_edge_conns_open, dt_edge_conns_max,
	// dt_edge_conns_refused_total by reason, dt_edge_send_timeouts_total). Nil: none.
	Registerer prometheus.Registerer
	// StdHTTP1 serves plain HTTP/1.x with net/http's own server instead of package h1's,
	// which answers with a fraction of the work (see internal/h1). It is the way back should a
	// client ever disagree with h1.
	StdHTTP1 bool
	// StdHTTP2 serves HTTP/2 with net/http's own server instead of package h2's, which answers
	// small requests with a fraction of the work (see internal/h2). It is the way back should
	// a client ever disagree with h2.
	StdHTTP2 bool
}

// Defaults of Config.
const (
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultIdleTimeout       = 2 * time.Minute
	DefaultMaxHeaderBytes    = 64 << 10
	DefaultShutdownTimeout   = 10 * time.Second
	DefaultSendTimeout       = time.Minute
)

// Server is a dt edge: it serves the current deploy to visitors. It has no timeout on a whole
// response: a 10 MiB file to a slow phone takes as long as it takes. A connection where nothing
// moves is closed: by ReadHeaderTimeout while a request's headers or a TLS handshake trickle
// in, by IdleTimeout between requests and over HTTP/2, by SendTimeout while a write makes no
// progress (plain HTTP/1.x and every TLS connection). Connections past MaxConns or
// MaxConnsPerIP are reset at accept.
type Server struct {
	cfg     Config
	log     *slog.Logger
	handler *Handler
	conns   *connlimit.Limiter // shared by every listener Serve runs on
	h2stats h2.Stats           // the limits' hits of every h2.Server this Server runs
	// sendTimeouts counts the connections SendTimeout closed, on every listener.
	sendTimeouts   prometheus.Counter
	logSendTimeout *burstlog.Logger
}

// New checks cfg and returns a Server with no site (it answers 503 until SetSite).
func New(cfg Config) (*Server, error) {
	var errs []error
	if cfg.ReadHeaderTimeout < 0 || cfg.IdleTimeout < 0 || cfg.ShutdownTimeout < 0 || cfg.SendTimeout < 0 {
		errs = append(errs, fmt.Errorf("%w: negative timeout", ErrInvalidConfig))
	}
	if cfg.MaxHeaderBytes < 0 {
		errs = append(errs, fmt.Errorf("%w: negative MaxHeaderBytes", ErrInvalidConfig))
	}
	if cfg.MaxConns < 0 || cfg.MaxConnsPerIP < 0 {
		errs = append(errs, fmt.Errorf("%w: negative connection cap", ErrInvalidConfig))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: cfg.Logger}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.cfg.ReadHeaderTimeout = cmp.Or(cfg.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	s.cfg.IdleTimeout = cmp.Or(cfg.IdleTimeout, DefaultIdleTimeout)
	s.cfg.MaxHeaderBytes = cmp.Or(cfg.MaxHeaderBytes, DefaultMaxHeaderBytes)
	s.cfg.ShutdownTimeout = cmp.Or(cfg.ShutdownTimeout, DefaultShutdownTimeout)
	s.cfg.SendTimeout = cmp.Or(cfg.SendTimeout, DefaultSendTimeout)
	lim, err := connlimit.New(connlimit.Config{MaxConns: cfg.MaxConns, MaxConnsPerAddr: cfg.MaxConnsPerIP,
		FDReserve: cfg.FDReserve, Registerer: cfg.Registerer, Subsystem: "edge", Logger: s.log})
	if err != nil {
		return nil, fmt.Errorf("edge: %w", err)
	}
	s.conns = lim
	s.sendTimeouts = prometheus.NewCounter(prometheus.CounterOpts{Namespace: "dt", Subsystem: "edge",
		Name: "send_timeouts_total", Help: "Visitor connections closed because the client took nothing of a response for the send timeout."})
	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(s.sendTimeouts); err != nil {
			return nil, fmt.Errorf("edge: register metrics: %w", err)
		}
	}
	s.logSendTimeout = &burstlog.Logger{Log: s.log, Level: slog.LevelWarn,
		Msg: "Closing connections whose client stopped reading (send timeout)"}
	s.handler = NewHandler(HandlerConfig{Logger: s.log, Observer: cfg.Observer, Routes: cfg.Routes, SendTimeout: s.cfg.SendTimeout})
	return s, nil
}

// H2Stats returns the counts of the HTTP/2 limits' hits (package h2; zero with StdHTTP2).
func (s *Server) H2Stats() *h2.Stats { return &s.h2stats }

// Handler returns the server's HTTP handler.
func (s *Server) Handler() *Handler { return s.handler }

// Limit returns ln with its connections counted against the server's caps, for a listener
// another server runs (an ACME challenge responder, say). Serve does this to its listener itself.
func (s *Server) Limit(ln net.Listener) net.Listener { return s.conns.Listener(ln) }

// ConnStats returns the counts of the server's connection caps.
func (s *Server) ConnStats() connlimit.Stats { return s.conns.Stats() }

// SetSite switches the served deploy (see Handler.SetSite).
func (s *Server) SetSite(site *Site) { s.handler.SetSite(site) }

// Serve serves HTTP on ln until ctx is done, then shuts down gracefully: it stops accepting,
// lets requests in flight finish for up to ShutdownTimeout, then closes what is left. With a
// nil tlsConfig it speaks plain HTTP/1.1; otherwise TLS with HTTP/2 and HTTP/1.1 by ALPN
// (tlsConfig is cloned, not modified). Connections past the caps (MaxConns, MaxConnsPerIP) are
// reset at accept. Serve closes ln. It returns nil after a shutdown caused by ctx, or the error
// that stopped it.
func (s *Server) Serve(ctx context.Context, ln net.Listener, tlsConfig *tls.Config) error {
	srv := s.newHTTPServer(tlsConfig)
	ln = s.conns.Listener(ln)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("edge: serve %s: %w", ln.Addr(), err)
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
		return fmt.Errorf("edge: serve %s: %w", ln.Addr(), err)
	}
	return nil
}

// httpServer is what Serve runs: an *h1.Server or an *http.Server.
type httpServer interface {
	Serve(net.Listener) error
	Shutdown(context.Context) error
	Close() error
}

// newHTTPServer returns the server for a listener: h1 for plain HTTP, net/http with h2 for TLS
// (h1 does not negotiate TLS), net/http alone when the configuration asks for it.
func (s *Server) newHTTPServer(tlsConfig *tls.Config) httpServer {
	if tlsConfig == nil && !s.cfg.StdHTTP1 {
		// Connections are left as the listener gives them, a *net.TCPConn in the caps'
		// wrapper, which h1 writes with writev and sendfile: it gathers a response's writes
		// and bounds them with SendTimeout itself (no sendconn.Conn).
		return &h1.Server{
			Handler:           s.handler,
			ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
			IdleTimeout:       s.cfg.IdleTimeout,
			SendTimeout:       s.cfg.SendTimeout,
			OnSendTimeout:     s.sendTimedOut,
			MaxHeaderBytes:    s.cfg.MaxHeaderBytes,
			Logger:            s.log,
			ConnContext:       sendconn.ConnContext,
		}
	}
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		MaxHeaderBytes:    s.cfg.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		ConnContext:       sendconn.ConnContext,
	}
	if tlsConfig != nil {
		tc := tlsConfig.Clone()
		for _, p := range []string{"h2", "http/1.1"} {
			if !slices.Contains(tc.NextProtos, p) {
				tc.NextProtos = append(tc.NextProtos, p)
			}
		}
		srv.TLSConfig = tc
		if !s.cfg.StdHTTP2 {
			h2s := &h2.Server{IdleTimeout: s.cfg.IdleTimeout, SendTimeout: s.cfg.SendTimeout, Stats: &s.h2stats, Logger: s.log}
			h2s.Configure(srv)
		} else {
			// net/http's HTTP/2 server with the bounds h2 has where it offers them: a
			// write that takes no byte for SendTimeout ends the connection, and streams
			// are capped as h2's are. Its idle timeout counts streams, not PINGs.
			srv.HTTP2 = &http.HTTP2Config{
				MaxConcurrentStreams: h2.DefaultMaxConcurrentStreams,
				WriteByteTimeout:     s.cfg.SendTimeout,
			}
		}
	}
	return stdServer{srv, s.cfg.SendTimeout, s.sendTimedOut}
}

// sendTimedOut counts and logs a connection SendTimeout closed.
func (s *Server) sendTimedOut() {
	s.sendTimeouts.Inc()
	s.logSendTimeout.Hit(context.Background(), slog.Duration("send_timeout", s.cfg.SendTimeout))
}

// stdServer serves net/http's way, on connections that can be corked and whose writes are
// bounded by sendTimeout per step (sendconn.Conn), with TLS when it has a configuration. net/http bounds the TLS
// handshake by ReadHeaderTimeout.
type stdServer struct {
	*http.Server
	sendTimeout time.Duration
	expired     func()
}

func (s stdServer) Serve(ln net.Listener) error {
	ln = sendconn.Listener{Listener: ln, Timeout: s.sendTimeout, Expired: s.expired}
	if s.TLSConfig != nil {
		return s.ServeTLS(ln, "", "")
	}
	return s.Server.Serve(ln)
}
