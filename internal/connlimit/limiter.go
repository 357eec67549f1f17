package connlimit

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dt-cdn/dt/internal/burstlog"
)

// Defaults of Config.
const (
	// DefaultMaxConns is the total cap, before the descriptor budget lowers it. nginx's
	// worker_connections ships at 1,024 per worker, a few thousand on a small VPS. An idle
	// keep-alive connection of an edge costs about 27 KiB of Go heap and stack (measured over
	// 2,000 connections, h1 and HTTPS HTTP/1.1 alike; internal/httpserve TestIdleConnMemory), plus the
	// kernel's socket: 10,000 idle visitors hold about 300-400 MiB, what a 1-2 GiB VPS can
	// spare, and the classic C10K that one edge should carry before the redirector spreads
	// visitors over more.
	DefaultMaxConns = 10000
	// DefaultMaxConnsPerAddr is the cap per IPv4 address or IPv6 /64. A browser opens at most 6
	// connections to a host over HTTP/1.1 and 1 over HTTP/2: 256 is room for about 40 browsers
	// loading pages at the same moment over HTTP/1.1, and hundreds over HTTP/2, behind one NAT
	// (an office, a campus, a carrier-grade NAT), while one attacking address holds at most
	// 2.5 % of the default total. nginx's limit_conn has no default; its examples use 1-100 for a
	// single site's downloads, which would turn away a shared NAT.
	DefaultMaxConnsPerAddr = 256
	// DefaultFDReserve is how many descriptors visitors can never take: a node's peer links, its
	// database, the blob files it syncs, its admin and log files, with room to spare. With Go
	// raising the soft limit to the hard limit (65,536 to 1,048,576 on current Linux
	// distributions and systemd units), 1,024 costs visitors nothing.
	DefaultFDReserve = 1024
)

// Config configures a Limiter. Zero fields take the defaults given with each; New does not
// modify the Config.
type Config struct {
	// MaxConns caps the connections open at once over all the Limiter's listeners. Zero means
	// DefaultMaxConns. The cap in force is lower when the descriptor budget is (see Budget).
	MaxConns int
	// MaxConnsPerAddr caps the connections open at once from one IPv4 address or one IPv6 /64
	// (an IPv4-mapped IPv6 address counts as the IPv4 address). Zero means
	// DefaultMaxConnsPerAddr.
	MaxConnsPerAddr int
	// FDReserve is how many descriptors of the process's limit visitors cannot take (see
	// Budget). Zero means DefaultFDReserve; negative means none, and no cap from the
	// descriptor limit at all.
	FDReserve int
	// Registerer receives the metrics, named dt_<Subsystem>_conns_*: connections open, the cap
	// in force, and connections refused by reason ("per_ip": one IPv4 address or IPv6 /64; "total"). Nil: none.
	Registerer prometheus.Registerer
	// Subsystem names the metrics ("edge", "redirector"). Empty means "http".
	Subsystem string
	// Logger receives the limits at New and one line per burst of refused connections (see
	// package burstlog). Nil discards.
	Logger *slog.Logger
}

// Reasons a connection is refused, as the metrics label them.
const (
	ReasonPerAddr = "per_ip"
	ReasonTotal   = "total"
)

// Limiter counts the connections of the listeners it wraps against the caps. It is safe for
// use by several goroutines.
type Limiter struct {
	max, perAddr int
	fdLimit      uint64 // the descriptor limit the cap was computed from; 0 when unknown

	refusedPerAddr, refusedTotal atomic.Uint64
	logPerAddr, logTotal         *burstlog.Logger

	mu     sync.Mutex
	open   int                // guarded by mu
	byAddr map[netip.Addr]int // guarded by mu: open connections by Key, none at zero
}

// New checks cfg, computes the caps in force, registers the metrics and returns a Limiter.
func New(cfg Config) (*Limiter, error) {
	var errs []error
	if cfg.MaxConns < 0 {
		errs = append(errs, fmt.Errorf("%w: negative MaxConns", ErrInvalidConfig))
	}
	if cfg.MaxConnsPerAddr < 0 {
		errs = append(errs, fmt.Errorf("%w: negative MaxConnsPerAddr", ErrInvalidConfig))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	l := &Limiter{
		max:     cmp.Or(cfg.MaxConns, DefaultMaxConns),
		perAddr: cmp.Or(cfg.MaxConnsPerAddr, DefaultMaxConnsPerAddr),
		byAddr:  make(map[netip.Addr]int),
		logPerAddr: &burstlog.Logger{Log: log, Level: slog.LevelWarn,
			Msg: "Connections refused: too many from one address"},
		logTotal: &burstlog.Logger{Log: log, Level: slog.LevelWarn,
			Msg: "Connections refused: too many open"},
	}
	reserve := cmp.Or(cfg.FDReserve, DefaultFDReserve)
	if reserve > 0 {
		if n, limit, ok := Budget(reserve); ok {
			l.fdLimit = limit
			if n < l.max {
				l.max = n
				// Below a thousand visitors, the limit is worth raising (LimitNOFILE= in
				// the unit, or ulimit -Hn); above, it is only worth knowing.
				level := slog.LevelInfo
				if n < 1000 {
					level = slog.LevelWarn
				}
				log.Log(context.Background(), level, "Descriptor limit lowers the connection cap; raise it with LimitNOFILE= in the unit or ulimit -n",
					slog.Uint64("fd_limit", limit), slog.Int("fd_reserve", reserve), slog.Int("max_conns", n))
			}
		}
	}
	if cfg.Registerer != nil {
		if err := l.register(cfg.Registerer, cmp.Or(cfg.Subsystem, "http")); err != nil {
			return nil, err
		}
	}
	log.Info("Connection limits", slog.Int("max_conns", l.max), slog.Int("max_conns_per_ip", l.perAddr),
		slog.Uint64("fd_limit", l.fdLimit), slog.Int("fd_reserve", max(reserve, 0)))
	return l, nil
}

func (l *Limiter) register(reg prometheus.Registerer, sub string) error {
	refused := func(reason string, n *atomic.Uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "dt", Subsystem: sub, Name: "conns_refused_total",
			Help:        "Connections closed at accept because a cap was reached, by cap.",
			ConstLabels: prometheus.Labels{"reason": reason}}, func() float64 { return float64(n.Load()) })
	}
	cs := []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "dt", Subsystem: sub, Name: "conns_open",
			Help: "Visitor connections open."}, func() float64 { return float64(l.Stats().Open) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "dt", Subsystem: sub, Name: "conns_max",
			Help: "The cap on visitor connections in force (configured, or lowered by the descriptor limit)."},
			func() float64 { return float64(l.max) }),
		refused(ReasonPerAddr, &l.refusedPerAddr),
		refused(ReasonTotal, &l.refusedTotal),
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("connlimit: register metrics: %w", err)
		}
	}
	return nil
}

// Stats are a Limiter's counts.
type Stats struct {
	Open           int    // connections open now
	Max            int    // the total cap in force
	RefusedPerAddr uint64 // connections refused by the per-address cap, since New
	RefusedTotal   uint64 // connections refused by the total cap, since New
}

// Stats returns the Limiter's counts.
func (l *Limiter) Stats() Stats {
	l.mu.Lock()
	open := l.open
	l.mu.Unlock()
	return Stats{Open: open, Max: l.max, RefusedPerAddr: l.refusedPerAddr.Load(), RefusedTotal: l.refusedTotal.Load()}
}

// Listener returns ln with its connections counted against l: Accept returns only connections
// within the caps, and closes the others itself. Closing the returned listener closes ln.
func (l *Limiter) Listener(ln net.Listener) net.Listener { return &listener{Listener: ln, lim: l} }

// Key returns what a connection from ip counts against: the address itself for IPv4 (an
// IPv4-mapped IPv6 address as the IPv4 address), its /64 for IPv6, without zone. A host or a
// subscriber is commonly given a whole /64, so counting IPv6 addresses one by one would give an
// attacker 2^64 of them.
func Key(ip netip.Addr) netip.Addr {
	ip = ip.Unmap().WithZone("")
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.Addr()
	}
	return ip
}

// keyOf is Key of a connection's remote address; the zero Addr when it is not an IP address
// (only the total cap applies then).
func keyOf(a net.Addr) netip.Addr {
	switch a := a.(type) {
	case *net.TCPAddr:
		return Key(a.AddrPort().Addr())
	case nil:
		return netip.Addr{}
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Addr{}
	}
	return Key(ap.Addr())
}

// acquire takes a slot for a connection from key, or returns why it cannot.
func (l *Limiter) acquire(key netip.Addr) (reason string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open >= l.max {
		return ReasonTotal
	}
	if key.IsValid() {
		n := l.byAddr[key]
		if n >= l.perAddr {
			return ReasonPerAddr
		}
		l.byAddr[key] = n + 1
	}
	l.open++
	return ""
}

// release gives back a slot acquire took.
func (l *Limiter) release(key netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.open--
	if key.IsValid() {
		if n := l.byAddr[key] - 1; n > 0 {
			l.byAddr[key] = n
		} else {
			delete(l.byAddr, key)
		}
	}
}

// refuse closes c, which a cap turned away, counts it and logs the burst it is part of.
func (l *Limiter) refuse(c net.Conn, key netip.Addr, reason string) {
	// A reset rather than a FIN: the kernel drops the socket at once instead of keeping it in
	// FIN_WAIT/TIME_WAIT, and a client that sends anyway gets no more of the server's time.
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	c.Close()
	ctx := context.Background()
	switch reason {
	case ReasonPerAddr:
		l.refusedPerAddr.Add(1)
		l.logPerAddr.Hit(ctx, slog.String("addr", key.String()), slog.Int("max_conns_per_ip", l.perAddr))
	default:
		l.refusedTotal.Add(1)
		l.logTotal.Hit(ctx, slog.String("addr", key.String()), slog.Int("max_conns", l.max))
	}
}

// listener is a net.Listener whose connections count against lim.
type listener struct {
	net.Listener
	lim *Limiter
}

// Accept returns the next connection within the caps. Connections past them are closed here,
// before the server sees a byte of them; Accept goes on to the next at once.
func (ln *listener) Accept() (net.Conn, error) {
	for {
		c, err := ln.Listener.Accept()
		if err != nil {
			return nil, err
		}
		key := keyOf(c.RemoteAddr())
		if reason := ln.lim.acquire(key); reason != "" {
			ln.lim.refuse(c, key, reason)
			continue
		}
		if tc, ok := c.(*net.TCPConn); ok {
			return &TCPConn{TCPConn: tc, slot: slot{lim: ln.lim, key: key}}, nil
		}
		return &Conn{Conn: c, slot: slot{lim: ln.lim, key: key}}, nil
	}
}

// slot is a connection's place under the caps.
type slot struct {
	lim      *Limiter
	key      netip.Addr
	released atomic.Bool
}

// release gives the slot back, the first time only.
func (s *slot) release() {
	if s.released.CompareAndSwap(false, true) {
		s.lim.release(s.key)
	}
}

// TCPConn is a TCP connection a Limiter's listener accepted. It is a *net.TCPConn in all but
// Close, which also gives back its slot (once): sendfile by ReadFrom, writev by net.Buffers
// and SyscallConn for socket options go straight to the socket.
type TCPConn struct {
	*net.TCPConn
	slot slot
}

// Close closes the connection and gives back its slot.
func (c *TCPConn) Close() error {
	err := c.TCPConn.Close()
	c.slot.release()
	return err
}

// NetConn returns the connection underneath, as tls.Conn's NetConn does.
func (c *TCPConn) NetConn() net.Conn { return c.TCPConn }

// Conn is a connection other than TCP a Limiter's listener accepted; Close also gives back its
// slot (once).
type Conn struct {
	net.Conn
	slot slot
}

// Close closes the connection and gives back its slot.
func (c *Conn) Close() error {
	err := c.Conn.Close()
	c.slot.release()
	return err
}

// NetConn returns the connection underneath.
func (c *Conn) NetConn() net.Conn { return c.Conn }
