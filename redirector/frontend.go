package redirector

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dt-cdn/dt/internal/burstlog"
	"github.com/dt-cdn/dt/internal/h2"
	"github.com/dt-cdn/dt/internal/sendconn"
)

// FrontendConfig bounds the time and memory a visitor's connection may take from a redirector.
// Zero fields take the defaults given with each.
type FrontendConfig struct {
	// ReadHeaderTimeout bounds a request's header section from its first bytes (a new
	// connection's TLS handshake and first request from the accept), so that slowloris clients
	// cannot hold connections. Zero means 10 s.
	ReadHeaderTimeout time.Duration
	// IdleTimeout closes a keep-alive connection that waits this long for its next request,
	// over HTTP/2 too. Zero means 2 minutes.
	IdleTimeout time.Duration
	// SendTimeout closes a connection whose client takes nothing of what it is sent for this
	// long (nginx's send_timeout), plain and TLS alike: a client that stops reading (pipelined
	// requests whose answers it never reads, a stream it stalls) gives its connection back. A
	// deadline of each step of a write, not of a whole response, so a slow but steady client,
	// or a live stream, is never cut off. Zero means 1 minute, the edge's.
	SendTimeout time.Duration
	// MaxHeaderBytes bounds a request's line and header section. Zero means 64 KiB, the edge's:
	// the same visitors send the same cookies to both, and net/http's default of 1 MiB would
	// let each connection hold a megabyte of header.
	MaxHeaderBytes int
	// Registerer receives dt_redirector_send_timeouts_total. Nil: none.
	Registerer prometheus.Registerer
	// Logger receives the servers' errors at debug level and the send timeouts, once per
	// burst, at warn level. Nil discards them.
	Logger *slog.Logger
}

// Defaults of FrontendConfig.
const (
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultIdleTimeout       = 2 * time.Minute
	DefaultSendTimeout       = time.Minute
	DefaultMaxHeaderBytes    = 64 << 10
)

// Frontend makes the HTTP servers of a redirector's visitor listeners (and its dashboard's, if
// wanted), all under one FrontendConfig and one count of send timeouts.
type Frontend struct {
	cfg        FrontendConfig
	log        *slog.Logger
	timeouts   prometheus.Counter
	logTimeout *burstlog.Logger
}

// NewFrontend checks cfg and registers the frontend's metric.
func NewFrontend(cfg FrontendConfig) (*Frontend, error) {
	if cfg.ReadHeaderTimeout < 0 || cfg.IdleTimeout < 0 || cfg.SendTimeout < 0 || cfg.MaxHeaderBytes < 0 {
		return nil, errors.New("redirector: negative FrontendConfig field")
	}
	f := &Frontend{cfg: cfg, log: cmp.Or(cfg.Logger, slog.New(slog.DiscardHandler))}
	f.cfg.ReadHeaderTimeout = cmp.Or(cfg.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	f.cfg.IdleTimeout = cmp.Or(cfg.IdleTimeout, DefaultIdleTimeout)
	f.cfg.SendTimeout = cmp.Or(cfg.SendTimeout, DefaultSendTimeout)
	f.cfg.MaxHeaderBytes = cmp.Or(cfg.MaxHeaderBytes, DefaultMaxHeaderBytes)
	f.timeouts = prometheus.NewCounter(prometheus.CounterOpts{Namespace: "dt", Subsystem: "redirector",
		Name: "send_timeouts_total", Help: "Visitor connections closed because the client took nothing of a write for the send timeout."})
	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(f.timeouts); err != nil {
			return nil, fmt.Errorf("redirector: register metrics: %w", err)
		}
	}
	f.logTimeout = &burstlog.Logger{Log: f.log, Level: slog.LevelWarn,
		Msg: "Closing connections whose client stopped reading (send timeout)"}
	return f, nil
}

// Server returns a server of h with the frontend's timeouts and bounds, speaking TLS (HTTP/2 by
// internal/h2, and HTTP/1.1) when tlsConfig is not nil (it is used as it is). Serve it on a
// listener from Listener: that is what bounds its writes.
func (f *Frontend) Server(h http.Handler, tlsConfig *tls.Config) *http.Server {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: f.cfg.ReadHeaderTimeout,
		IdleTimeout:       f.cfg.IdleTimeout,
		MaxHeaderBytes:    f.cfg.MaxHeaderBytes,
		TLSConfig:         tlsConfig,
		ConnContext:       sendconn.ConnContext,
		ErrorLog:          slog.NewLogLogger(f.log.Handler(), slog.LevelDebug),
	}
	if tlsConfig != nil {
		// Redirects are answered from memory: HTTP/2 runs them on the connection's goroutine.
		(&h2.Server{IdleTimeout: f.cfg.IdleTimeout, Logger: f.log}).Configure(srv)
	}
	return srv
}

// Listener returns ln with a write deadline of SendTimeout on each step of every write to its
// connections, TLS records included; a connection closed by it is counted and logged.
func (f *Frontend) Listener(ln net.Listener) net.Listener {
	return sendconn.Listener{Listener: ln, Timeout: f.cfg.SendTimeout, Expired: f.expired}
}

func (f *Frontend) expired() {
	f.timeouts.Inc()
	f.logTimeout.Hit(context.Background(), slog.Duration("send_timeout", f.cfg.SendTimeout))
}
