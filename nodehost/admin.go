package nodehost

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/dt-cdn/dt/dt"
	"github.com/dt-cdn/dt/internal/guardapi"
	"github.com/dt-cdn/dt/internal/sendconn"
)

// Status is the body of GET /status: every dt.Status field at the top level, the link byte
// counters, and the role's part under its own field.
type Status struct {
	dt.Status
	// Build is the version of the binary the node runs (Config.Build).
	Build             any    `json:"build"`
	LinkBytesReceived uint64 `json:"link_bytes_received"`
	LinkBytesSent     uint64 `json:"link_bytes_sent"`
	// Load is the load test's progress, on its nodes.
	Load any `json:"load,omitempty"`
	// Redirector is the redirector's view of the edges, on redirectors.
	Redirector any `json:"redirector,omitempty"`
	// Edge is the deploy an edge serves, on edges.
	Edge any `json:"edge,omitempty"`
}

// status is the body of GET /status.
func (h *Host) status(role Role) Status {
	st := Status{Status: h.node.Status(), Build: h.cfg.Build}
	st.LinkBytesReceived, st.LinkBytesSent = h.node.WireBytes()
	if role.Status != nil {
		role.Status(&st)
	}
	return st
}

// Admin listener bounds.
const (
	// adminReadHeaderTimeout bounds the wait for a request's header.
	adminReadHeaderTimeout = 10 * time.Second
	// adminIdleTimeout closes idle keep-alive connections: without it net/http keeps them for ever.
	adminIdleTimeout = 2 * time.Minute
	// adminSendTimeout gives back the connection of a client that stops reading (a scrape, a
	// profile, the redirector's live dashboard) after this long without progress.
	adminSendTimeout = time.Minute
	// adminShutdownGrace is how long requests in flight may finish once the host stops.
	adminShutdownGrace = 5 * time.Second
)

// adminServer serves a node's status, metrics and profiles over HTTP.
type adminServer struct {
	srv *http.Server
	ln  net.Listener
	log *slog.Logger
	// grace is adminShutdownGrace; tests shorten it.
	grace time.Duration
	wg    sync.WaitGroup
	errc  chan error // the Serve result, buffered
}

// startAdmin listens on addr and serves h in the background until shutdown.
func startAdmin(addr string, h http.Handler, log *slog.Logger) (*adminServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("admin listener: %w", err)
	}
	a := &adminServer{
		ln:    ln,
		log:   log,
		grace: adminShutdownGrace,
		errc:  make(chan error, 1),
		srv: &http.Server{
			Handler:           h,
			ReadHeaderTimeout: adminReadHeaderTimeout,
			IdleTimeout:       adminIdleTimeout,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		},
	}
	a.wg.Go(func() { a.errc <- a.srv.Serve(sendconn.Listener{Listener: ln, Timeout: adminSendTimeout}) })
	return a, nil
}

// addr returns the bound address (useful with port 0).
func (a *adminServer) addr() string { return a.ln.Addr().String() }

// shutdown stops accepting, lets requests in flight finish for adminShutdownGrace, then closes
// them.
func (a *adminServer) shutdown() error {
	ctx, cancel := context.WithTimeout(context.Background(), a.grace)
	defer cancel()
	err := a.srv.Shutdown(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		// Requests still running after the grace (a live dashboard stream, a long profile, a
		// connection that sent nothing yet) are closed, as documented: not a failure to stop.
		a.log.Warn("Admin requests still running after the shutdown grace were closed", slog.Duration("grace", a.grace))
		err = nil
	}
	err = errors.Join(err, a.srv.Close())
	a.wg.Wait()
	if serr := <-a.errc; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	if err != nil {
		return fmt.Errorf("admin server: %w", err)
	}
	return nil
}

// adminHandler registers every admin route: the guard's, the process's, the role's, then the
// host's own.
func (h *Host) adminHandler(role Role) http.Handler {
	mux := http.NewServeMux()
	guardapi.Routes(mux, h.node, h.log, h.cfg.DescribeError)
	if h.cfg.AdminRoutes != nil {
		h.cfg.AdminRoutes(mux, h.node)
	}
	if role.Routes != nil {
		role.Routes(mux)
	}
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(h.status(role)) // a write error means the client left
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(h.reg, promhttp.HandlerOpts{}))
	// The pprof handlers are mounted explicitly: importing net/http/pprof also registers them on
	// http.DefaultServeMux, which dt never serves.
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}
