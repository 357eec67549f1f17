package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// Listeners are a UDP socket and a TCP listener on one address, as DNS is served (RFC 7766: TCP
// is as required as UDP).
type Listeners struct {
	UDP net.PacketConn
	TCP net.Listener
}

// Listen binds UDP and TCP on addr ("127.0.0.1:53", "[::1]:0"). With port 0 both get the same
// port, chosen by the system: the UDP port first, then TCP on it, retried a few times should
// another program hold that TCP port.
func Listen(addr string) (*Listeners, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("server: listen address %q: %w", addr, err)
	}
	var lastErr error
	for range 10 {
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			return nil, fmt.Errorf("server: listen on udp %s: %w", addr, err)
		}
		tcpAddr := addr
		if port == "0" {
			tcpAddr = net.JoinHostPort(host, fmt.Sprint(pc.LocalAddr().(*net.UDPAddr).Port))
		}
		ln, err := net.Listen("tcp", tcpAddr)
		if err == nil {
			return &Listeners{UDP: pc, TCP: ln}, nil
		}
		pc.Close()
		lastErr = err
		if port != "0" {
			break
		}
	}
	return nil, fmt.Errorf("server: listen on tcp %s: %w", addr, lastErr)
}

// Addr is the bound address (UDP and TCP share it).
func (l *Listeners) Addr() string { return l.UDP.LocalAddr().String() }

// Close closes both; Serve closes them itself.
func (l *Listeners) Close() error { return errors.Join(l.UDP.Close(), l.TCP.Close()) }

// Serve answers queries with h on both listeners until ctx ends, then stops them, letting answers
// in flight finish (up to 2 s), and returns. It closes the listeners.
func Serve(ctx context.Context, h dns.Handler, l *Listeners) error {
	udp := &dns.Server{PacketConn: l.UDP, Handler: h, UDPSize: dns.MaxMsgSize}
	tcp := &dns.Server{Listener: l.TCP, Handler: h,
		// Bounds on idle and slow clients (RFC 7766 §6.2.3 suggests seconds, not minutes).
		ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second,
		IdleTimeout: func() time.Duration { return 10 * time.Second }}
	started := make(chan struct{}, 2)
	udp.NotifyStartedFunc = func() { started <- struct{}{} }
	tcp.NotifyStartedFunc = func() { started <- struct{}{} }
	errc := make(chan error, 2)
	var wg sync.WaitGroup
	for _, s := range []*dns.Server{udp, tcp} {
		wg.Go(func() { errc <- s.ActivateAndServe() })
	}
	// Shutdown refuses a server that has not started, so wait for both (or a failure to start).
	var err error
	for ready := 0; ready < 2 && err == nil; {
		select {
		case <-started:
			ready++
		case err = <-errc:
		}
	}
	if err == nil {
		select {
		case <-ctx.Done():
		case err = <-errc:
		}
	}
	stop, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, s := range []*dns.Server{udp, tcp} {
		_ = s.ShutdownContext(stop)
	}
	l.Close()
	wg.Wait()
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	return nil
}
