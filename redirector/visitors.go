package redirector

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"

	"github.com/dt-cdn/dt/internal/connlimit"
	"github.com/dt-cdn/dt/nodehost"
)

// serve answers visitors on the configured listeners and runs the Service, the GeoIP watch and
// the dashboard beside them until ctx ends or one of them fails. It calls ready once every
// listener serves. It returns when every goroutine it started has ended (the visitor servers
// after their shutdown, DefaultShutdownTimeout at most); the error is the first failure.
func (r *Node) serve(ctx context.Context, p *parts, ready func(nodehost.Serving) error) (err error) {
	ctx, cancel := context.WithCancel(ctx)
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		failed error // guarded by mu: the first failure of a goroutine
	)
	defer func() {
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
	run := func(f func(context.Context) error) {
		wg.Go(func() {
			if err := f(ctx); err != nil {
				stop(err)
			}
		})
	}
	addrs, err := r.listen(p, run)
	if err != nil {
		return err
	}
	run(p.svc.Run)
	if p.geo != nil {
		run(p.geo.Watch)
	}
	run(p.dash.Run)
	run(p.stats.flushRedirects)
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

// listen binds the visitor listeners and serves each through run, which runs it until the
// run's context ends.
func (r *Node) listen(p *parts, run func(func(context.Context) error)) (addrs nodehost.Serving, err error) {
	fcfg := r.cfg.Frontend
	fcfg.Registerer, fcfg.Logger = p.reg, r.log
	caps := &connlimit.Config{MaxConns: r.cfg.MaxConns, MaxConnsPerAddr: r.cfg.MaxConnsPerAddr, FDReserve: r.cfg.FDReserve}
	front, err := newFrontend(p.svc.Handler(), fcfg, caps)
	if err != nil {
		return addrs, err
	}
	serve := func(addr string, tlsConfig *tls.Config) (string, error) {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return "", fmt.Errorf("redirector: listen on %s: %w", addr, err)
		}
		// Past the caps, connections are reset at accept, before a TLS handshake; the rest
		// have a deadline on every write.
		run(func(ctx context.Context) error { return front.Serve(ctx, ln, tlsConfig) })
		r.log.Info("Redirector serving", slog.String("addr", ln.Addr().String()), slog.Bool("tls", tlsConfig != nil))
		return ln.Addr().String(), nil
	}
	if r.cfg.HTTP != "" {
		if addrs.HTTP, err = serve(r.cfg.HTTP, nil); err != nil {
			return addrs, err
		}
	}
	if r.cfg.HTTPS != "" {
		if addrs.HTTPS, err = serve(r.cfg.HTTPS, p.certs.TLSConfig()); err != nil {
			return addrs, err
		}
	}
	return addrs, nil
}
