package redirector

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/dt-cdn/dt/internal/connlimit"
	"github.com/dt-cdn/dt/internal/nodehost"
)

// ShutdownGrace is how long a stopping redirector lets requests in flight finish before it
// closes their connections: a redirect is answered from memory, so only a client too slow to
// take a few hundred bytes needs the time.
const ShutdownGrace = 5 * time.Second

// serve answers visitors on the parts' listeners and runs the Service, the GeoIP watch and the
// dashboard beside them until ctx ends or one of them fails. It calls ready once every listener
// serves. It returns when every goroutine it started has ended; the error is the first failure.
func (r *Node) serve(ctx context.Context, p *parts, ready func(nodehost.Serving) error) (err error) {
	ctx, cancel := context.WithCancel(ctx)
	var (
		wg      sync.WaitGroup
		servers []*http.Server
		mu      sync.Mutex
		failed  error // guarded by mu: the first failure of a goroutine
	)
	// Shutdown order: the visitor servers first (no new requests), then the loops, which end
	// on the cancelled context.
	defer func() {
		for _, srv := range servers {
			shutdown(srv)
		}
		cancel()
		wg.Wait()
		err = errors.Join(err, failed)
	}()
	// stop ends the run; its error counts only when it is the first and the run was not
	// already ending.
	stop := func(err error) {
		mu.Lock()
		if err != nil && failed == nil && ctx.Err() == nil {
			failed = err
		}
		mu.Unlock()
		cancel()
	}
	servers, addrs, err := r.listen(p, &wg, stop)
	if err != nil {
		return err
	}
	run := func(f func(context.Context) error) {
		wg.Go(func() {
			if err := f(ctx); err != nil {
				stop(err)
			}
		})
	}
	run(p.svc.Run)
	if p.geo != nil {
		run(p.geo.Watch)
	}
	if p.dash != nil {
		run(p.dash.Run)
	}
	if len(r.cfg.Domains) > 0 {
		wg.Go(func() {
			if err := p.certs.Warm(ctx); err != nil && ctx.Err() == nil {
				r.log.Warn("Certificate not obtained yet", slog.Any("err", err))
			}
		})
	}
	if err := ready(addrs); err != nil {
		return err
	}
	<-ctx.Done()
	return nil
}

// listen binds the visitor listeners and serves each on a goroutine of wg. A server that stops
// on its own calls stop with its error.
func (r *Node) listen(p *parts, wg *sync.WaitGroup, stop func(error)) (servers []*http.Server, addrs nodehost.Serving, err error) {
	ccfg := connlimit.Config{MaxConns: r.cfg.MaxConns, MaxConnsPerAddr: r.cfg.MaxConnsPerAddr, FDReserve: r.cfg.FDReserve,
		Registerer: p.reg, Subsystem: "redirector", Logger: r.log}
	conns, err := connlimit.New(ccfg)
	if err != nil {
		return nil, addrs, err
	}
	fcfg := r.cfg.Frontend
	fcfg.Registerer, fcfg.Logger = p.reg, r.log
	front, err := NewFrontend(fcfg)
	if err != nil {
		return nil, addrs, err
	}
	serve := func(addr string, tlsConfig *tls.Config) (string, error) {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return "", fmt.Errorf("redirector: listen on %s: %w", addr, err)
		}
		bound := ln.Addr().String()
		// Past the caps, connections are reset at accept, before a TLS handshake; the rest have
		// a deadline on every write.
		ln = front.Listener(conns.Listener(ln))
		srv := front.Server(p.svc.Handler(), tlsConfig)
		servers = append(servers, srv)
		wg.Go(func() {
			var err error
			if tlsConfig != nil {
				err = srv.ServeTLS(ln, "", "")
			} else {
				err = srv.Serve(ln)
			}
			if !errors.Is(err, http.ErrServerClosed) {
				stop(err)
			}
		})
		r.log.Info("Redirector serving", slog.String("addr", bound), slog.Bool("tls", tlsConfig != nil))
		return bound, nil
	}
	if r.cfg.HTTP != "" {
		if addrs.HTTP, err = serve(r.cfg.HTTP, nil); err != nil {
			return servers, addrs, err
		}
	}
	if r.cfg.HTTPS != "" {
		if addrs.HTTPS, err = serve(r.cfg.HTTPS, p.certs.TLSConfig()); err != nil {
			return servers, addrs, err
		}
	}
	return servers, addrs, nil
}

// shutdown stops an HTTP server, letting requests in flight finish for up to ShutdownGrace.
func shutdown(srv *http.Server) {
	ctx, cancel := context.WithTimeout(context.Background(), ShutdownGrace)
	defer cancel()
	if srv.Shutdown(ctx) != nil {
		srv.Close()
	}
}
