// Package faultnet is a TCP proxy for tests that injects network faults between two endpoints on
// the loopback interface: a partition (Cut drops every connection and refuses new ones until
// Heal), added latency and a bandwidth cap. Traffic goes only to the target the test names.
package faultnet

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Proxy forwards connections accepted on Addr to a target address.
type Proxy struct {
	ln     net.Listener
	target string

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	cut     bool                  // guarded by mu
	conns   map[net.Conn]struct{} // guarded by mu
	latency time.Duration         // guarded by mu
	limiter *rate.Limiter         // guarded by mu; nil: unlimited
	record  io.Writer             // guarded by mu; nil: none
}

// New starts a proxy on listenAddr ("127.0.0.1:0") that forwards to target.
func New(listenAddr, target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", listenAddr)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Proxy{ln: ln, target: target, ctx: ctx, cancel: cancel, conns: map[net.Conn]struct{}{}}
	p.wg.Go(p.accept)
	return p, nil
}

// Addr is the address to dial instead of the target.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Cut partitions the link: open connections are closed, new ones are closed at once.
func (p *Proxy) Cut() {
	p.mu.Lock()
	p.cut = true
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
}

// Heal ends a partition.
func (p *Proxy) Heal() {
	p.mu.Lock()
	p.cut = false
	p.mu.Unlock()
}

// SetLatency delays every chunk forwarded in either direction by d.
func (p *Proxy) SetLatency(d time.Duration) {
	p.mu.Lock()
	p.latency = d
	p.mu.Unlock()
}

// SetBandwidth caps the bytes per second forwarded, both directions together; zero removes the cap.
func (p *Proxy) SetBandwidth(bytesPerSecond int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if bytesPerSecond <= 0 {
		p.limiter = nil
		return
	}
	p.limiter = rate.NewLimiter(rate.Limit(bytesPerSecond), 64<<10)
}

// Record copies every chunk forwarded from now on, in either direction, to w (under the
// proxy's lock, so w needs no locking of its own), for tests that inspect what went over the
// wire; nil stops recording.
func (p *Proxy) Record(w io.Writer) {
	p.mu.Lock()
	p.record = w
	p.mu.Unlock()
}

// Close stops the proxy and closes every connection through it.
func (p *Proxy) Close() error {
	p.cancel()
	err := p.ln.Close()
	p.Cut()
	p.wg.Wait()
	return err
}

func (p *Proxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		cut := p.cut
		p.mu.Unlock()
		if cut {
			c.Close()
			continue
		}
		p.wg.Go(func() { p.serve(c) })
	}
}

func (p *Proxy) serve(in net.Conn) {
	var d net.Dialer
	out, err := d.DialContext(p.ctx, "tcp", p.target)
	if err != nil {
		in.Close()
		return
	}
	if !p.track(in, out) {
		in.Close()
		out.Close()
		return
	}
	defer p.untrack(in, out)
	var wg sync.WaitGroup
	wg.Go(func() { p.pipe(out, in) })
	wg.Go(func() { p.pipe(in, out) })
	wg.Wait()
}

func (p *Proxy) track(cs ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cut || p.ctx.Err() != nil {
		return false
	}
	for _, c := range cs {
		p.conns[c] = struct{}{}
	}
	return true
}

func (p *Proxy) untrack(cs ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range cs {
		c.Close()
		delete(p.conns, c)
	}
}

// pipe copies src to dst with the proxy's faults applied, and closes both ends when either fails.
func (p *Proxy) pipe(dst, src net.Conn) {
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			latency, lim := p.latency, p.limiter
			if p.record != nil {
				_, _ = p.record.Write(buf[:n])
			}
			p.mu.Unlock()
			if latency > 0 {
				t := time.NewTimer(latency)
				select {
				case <-t.C:
				case <-p.ctx.Done():
					t.Stop()
					return
				}
			}
			if lim != nil {
				for off := 0; off < n; off += lim.Burst() {
					if lim.WaitN(p.ctx, min(lim.Burst(), n-off)) != nil {
						return
					}
				}
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				return
			}
			return
		}
	}
}
