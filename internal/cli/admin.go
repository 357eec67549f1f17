package cli

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

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/dt-cdn/dt/dt"
	"github.com/dt-cdn/dt/internal/sendconn"
)

// nodeStatus is the body of GET /status: every dt.Status field at the top level, the link byte
// counters, and the load test's progress on loadtest nodes.
type nodeStatus struct {
	dt.Status
	// Build is the version of the binary the node runs.
	Build             buildInfo   `json:"build"`
	LinkBytesReceived uint64      `json:"link_bytes_received"`
	LinkBytesSent     uint64      `json:"link_bytes_sent"`
	Load              *loadStatus `json:"load,omitempty"`
	// Redirector is the redirector's view of the edges, on `dt redirector` nodes.
	Redirector any `json:"redirector,omitempty"`
	// Edge is the deploy an edge serves, on `dt edge` nodes.
	Edge any `json:"edge,omitempty"`
}

// adminServer serves a node's status, metrics and profiles over HTTP. It exposes heap contents
// through /debug/pprof/: bind it to loopback or a private network only.
type adminServer struct {
	srv  *http.Server
	ln   net.Listener
	wg   sync.WaitGroup
	errc chan error // the Serve result, buffered
}

// startAdmin listens on addr and serves in the background until shutdown.
func startAdmin(addr string, status func() nodeStatus, gatherer prometheus.Gatherer, extra func(*http.ServeMux), log *slog.Logger) (*adminServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("admin listener: %w", err)
	}
	a := &adminServer{
		ln:   ln,
		errc: make(chan error, 1),
		srv: &http.Server{
			Handler:           adminHandler(status, gatherer, extra),
			ReadHeaderTimeout: 10 * time.Second,
			// Without it net/http keeps an idle keep-alive connection for ever.
			IdleTimeout: 2 * time.Minute,
			ErrorLog:    slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		},
	}
	// A client that stops reading (a scrape, a profile, the redirector's live dashboard) gives
	// its connection back after a minute without progress.
	a.wg.Go(func() { a.errc <- a.srv.Serve(sendconn.Listener{Listener: ln, Timeout: time.Minute}) })
	return a, nil
}

// addr returns the bound address (useful with port 0).
func (a *adminServer) addr() string { return a.ln.Addr().String() }

// shutdown stops accepting, lets requests in flight finish for up to 5 s, then closes them.
func (a *adminServer) shutdown() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := a.srv.Shutdown(ctx)
	if err != nil {
		err = errors.Join(err, a.srv.Close())
	}
	a.wg.Wait()
	if serr := <-a.errc; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	if err != nil {
		return fmt.Errorf("admin server: %w", err)
	}
	return nil
}

// adminHandler registers every admin route.
func adminHandler(status func() nodeStatus, gatherer prometheus.Gatherer, extra func(*http.ServeMux)) http.Handler {
	mux := http.NewServeMux()
	if extra != nil {
		extra(mux)
	}
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(status()) // a write error means the client left
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}))
	// The pprof handlers are mounted explicitly: importing net/http/pprof also registers them on
	// http.DefaultServeMux, which dt never serves.
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}
