package redirector

import (
	"cmp"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dt-cdn/dt/internal/connlimit"
	"github.com/dt-cdn/dt/internal/httpserve"
)

// FrontendConfig bounds the time and memory a visitor's connection may take from a redirector.
// Zero fields take the defaults given with each.
type FrontendConfig struct {
	// ReadHeaderTimeout bounds a request's header section from its first bytes (a new
	// connection's TLS handshake and first request from the accept), so that slowloris clients
	// cannot hold connections. Zero means httpserve.DefaultReadHeaderTimeout (10 s).
	ReadHeaderTimeout time.Duration
	// IdleTimeout closes a keep-alive connection that waits this long for its next request,
	// over HTTP/2 too. Zero means httpserve.DefaultIdleTimeout (2 minutes).
	IdleTimeout time.Duration
	// SendTimeout closes a connection whose client takes nothing of what it is sent for this
	// long (nginx's send_timeout), plain and TLS alike: a client that stops reading (pipelined
	// requests whose answers it never reads, a stream it stalls) gives its connection back. A
	// deadline of each step of a write, not of a whole response, so a slow but steady client,
	// or a live stream, is never cut off. Zero means httpserve.DefaultSendTimeout (1 minute,
	// the edge's).
	SendTimeout time.Duration
	// MaxHeaderBytes bounds a request's line and header section. Zero means
	// httpserve.DefaultMaxHeaderBytes (64 KiB, the edge's): the same visitors send the same
	// cookies to both, and net/http's default of 1 MiB would let each connection hold a
	// megabyte of header.
	MaxHeaderBytes int
	// ShutdownTimeout is how long Serve lets requests in flight finish once its context is
	// done, before closing their connections. Zero means DefaultShutdownTimeout.
	ShutdownTimeout time.Duration
	// Registerer receives dt_redirector_send_timeouts_total and the connection caps' metrics
	// (dt_redirector_conns_*). Nil: none.
	Registerer prometheus.Registerer
	// Logger receives the servers' errors at debug level and the send timeouts, once per
	// burst, at warn level. Nil discards them.
	Logger *slog.Logger
}

// DefaultShutdownTimeout is FrontendConfig's: redirects are answered from memory at once, so
// what may still run at shutdown is a dashboard stream, which has no end to wait for.
const DefaultShutdownTimeout = 5 * time.Second

// newFrontend returns the server of a redirector's visitor listeners (and its dashboard's, if
// wanted): h served by net/http's HTTP/1.x server and, over TLS, by package h2 (redirects are
// answered from memory: HTTP/2 runs them on the connection's goroutine), under cfg's bounds,
// with one count of send timeouts over every listener it serves. Serve it on each listener.
// caps, if set, caps the visitor connections open at once over every listener, reset at accept
// before a TLS handshake (Config's MaxConns, MaxConnsPerAddr and FDReserve); nil: no caps.
func newFrontend(h http.Handler, cfg FrontendConfig, caps *connlimit.Config) (*httpserve.Server, error) {
	return httpserve.New(httpserve.Config{
		Handler:           h,
		Logger:            cfg.Logger,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		MaxHeaderBytes:    cfg.MaxHeaderBytes,
		SendTimeout:       cfg.SendTimeout,
		ShutdownTimeout:   cmp.Or(cfg.ShutdownTimeout, DefaultShutdownTimeout),
		StdHTTP1:          true,
		ConnCaps:          caps,
		Registerer:        cfg.Registerer,
		Subsystem:         "redirector",
	})
}
