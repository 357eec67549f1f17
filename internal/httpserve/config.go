package httpserve

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dt-cdn/dt/internal/connlimit"
)

// Config configures a Server. Zero fields take the defaults given with each; New does not
// modify the Config.
type Config struct {
	// Handler answers every request. Required.
	Handler http.Handler
	// Logger receives the servers' errors at debug level, send timeouts once per burst at warn
	// level, and connections still busy at shutdown. Nil discards them.
	Logger *slog.Logger

	// ReadHeaderTimeout bounds the time to read a request's headers (and a new connection's TLS
	// handshake), so that slow-loris clients cannot hold connections. Too short turns away
	// clients on slow links. Zero means DefaultReadHeaderTimeout.
	ReadHeaderTimeout time.Duration
	// IdleTimeout closes keep-alive connections idle this long, over HTTP/2 too. Longer saves
	// returning visitors a handshake but holds a connection, and its place under the caps, for
	// each. Zero means DefaultIdleTimeout.
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds the request line and headers. Zero means DefaultMaxHeaderBytes.
	MaxHeaderBytes int
	// SendTimeout closes a connection whose client takes no bytes of a write for this long
	// (nginx's send_timeout): a deadline on each step of a write, not on a whole response, so
	// a slow but steady download goes on and a stalled one gives its connection back. Shorter
	// frees stalled connections sooner and risks cutting off clients on very lossy links. Zero
	// means DefaultSendTimeout.
	SendTimeout time.Duration
	// ShutdownTimeout is how long Serve waits, once its context is done, for requests in
	// flight before closing their connections. Zero means DefaultShutdownTimeout.
	ShutdownTimeout time.Duration

	// StdHTTP1 serves plain HTTP/1.x with net/http's server instead of package h1's, which
	// answers with a fraction of the work (see internal/h1). False (the zero value) means h1.
	// net/http's is the way back should a client ever disagree with h1, and the choice for
	// handlers that need what h1 leaves out (http.Hijacker, trailers; see internal/h1's
	// caveats) or that do not answer at once from memory or disk.
	StdHTTP1 bool
	// StdHTTP2 serves HTTP/2 with net/http's server instead of package h2's, which answers
	// small requests with a fraction of the work (see internal/h2). False (the zero value)
	// means h2. net/http's is the way back should a client ever disagree with h2.
	StdHTTP2 bool

	// ConnCaps, if set, caps the connections open at once over every listener the Server
	// serves: a connection past a cap is reset at accept, before its TLS handshake (see
	// internal/connlimit, whose zero fields mean its defaults). Its Registerer, Subsystem and
	// Logger, when zero, are this Config's. Nil means no caps.
	ConnCaps *connlimit.Config
	// Registerer receives dt_<Subsystem>_send_timeouts_total, the connections SendTimeout
	// closed on every listener the Server serves, and ConnCaps' metrics. Nil: none.
	Registerer prometheus.Registerer
	// Subsystem names the metrics: "edge" gives dt_edge_send_timeouts_total. Required with a
	// Registerer, so that two roles' servers in one process never share a name.
	Subsystem string
}

// Defaults of Config.
const (
	// DefaultReadHeaderTimeout is nginx's client_header_timeout (60 s) cut to what a visitor
	// on a slow mobile link needs for a few kilobytes of headers: each connection that trickles
	// its headers holds a slot under the caps for this long.
	DefaultReadHeaderTimeout = 10 * time.Second
	// DefaultIdleTimeout is nginx's keepalive_timeout (75 s) rounded up to Caddy's and
	// net/http's common choice: long enough for a visitor's next page view to reuse the
	// connection.
	DefaultIdleTimeout = 2 * time.Minute
	// DefaultMaxHeaderBytes is 64 KiB: a static site or a redirect needs no more (nginx's
	// large_client_header_buffers allows 4 × 8 KiB), and it bounds memory per connection far
	// below net/http's 1 MiB.
	DefaultMaxHeaderBytes = 64 << 10
	// DefaultSendTimeout is nginx's send_timeout (60 s).
	DefaultSendTimeout = time.Minute
	// DefaultShutdownTimeout lets a request in flight of a small file on a slow link finish; a
	// large download still going after it is cut off, as systemd's stop timeout (90 s) would
	// otherwise cut off the whole process.
	DefaultShutdownTimeout = 10 * time.Second
)
