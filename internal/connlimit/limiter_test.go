package connlimit

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/dt-cdn/dt/internal/testkit/promtest"
	"github.com/dt-cdn/dt/internal/testkit/syncbuf"
	"github.com/dt-cdn/dt/internal/testkit/wait"
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(runChild())
	}
	goleak.VerifyTestMain(m)
}

func TestKey(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"192.0.2.1", "192.0.2.1"},
		{"::ffff:192.0.2.1", "192.0.2.1"}, // IPv4-mapped: the IPv4 address
		{"2001:db8:1:2:3:4:5:6", "2001:db8:1:2::"},
		{"2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::"}, // same /64
		{"2001:db8:1:3::1", "2001:db8:1:3::"},                  // the next /64
		{"fe80::1%eth0", "fe80::"},                             // zone dropped
		{"::1", "::"},
	} {
		if got := Key(netip.MustParseAddr(tc.in)); got != netip.MustParseAddr(tc.want) {
			t.Errorf("Key(%s) = %s, want %s", tc.in, got, tc.want)
		}
	}
	a := Key(netip.MustParseAddr("2001:db8:1:2::1"))
	if b := Key(netip.MustParseAddr("2001:db8:1:2::2")); a != b {
		t.Errorf("two addresses of one /64 count apart: %s, %s", a, b)
	}
}

// otherAddr is a net.Addr that is not a *net.TCPAddr, whose String keyOf must parse.
type otherAddr string

func (a otherAddr) Network() string { return "other" }
func (a otherAddr) String() string  { return string(a) }

// keyOf parses remote addresses it does not know the type of: whatever the string, it returns
// a key that is its own key, or none.
func FuzzKeyOf(f *testing.F) {
	for _, s := range []string{"192.0.2.1:80", "[2001:db8::1]:443", "[::ffff:1.2.3.4]:1", "[fe80::1%eth0]:9", "@", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k := keyOf(otherAddr(s))
		if !k.IsValid() {
			return
		}
		if Key(k) != k || k.Zone() != "" || k.Is4In6() {
			t.Fatalf("keyOf(%q) = %s, not a key", s, k)
		}
		if ap, err := netip.ParseAddrPort(s); err != nil || Key(ap.Addr()) != k {
			t.Fatalf("keyOf(%q) = %s, want Key of the address", s, k)
		}
	})
}

func TestBudget(t *testing.T) {
	for _, tc := range []struct {
		limit   uint64
		reserve int
		want    int
	}{
		{1 << 20, 1024, (1<<20 - 1024) / 2},
		{256, 64, 96},
		{1024, 1024, 384}, // the reserve takes at most a quarter of a small limit
		{64, 64, 24},
		{10, 64, 4},
		{2, 64, 1},
		{1 << 62, 0, 1 << 29}, // unlimited is no cap worth the name
	} {
		if got := budget(tc.limit, tc.reserve); got != tc.want {
			t.Errorf("budget(%d, %d) = %d, want %d", tc.limit, tc.reserve, got, tc.want)
		}
	}
}

func TestConfig(t *testing.T) {
	if _, err := New(Config{MaxConns: -1}); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("negative MaxConns: %v", err)
	}
	if _, err := New(Config{MaxConnsPerAddr: -1}); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("negative MaxConnsPerAddr: %v", err)
	}
	l, err := New(Config{FDReserve: -1})
	if err != nil {
		t.Fatal(err)
	}
	if l.max != DefaultMaxConns || l.perAddr != DefaultMaxConnsPerAddr {
		t.Errorf("defaults: max %d, per address %d", l.max, l.perAddr)
	}
}

// server accepts on a capped loopback listener and keeps what it accepts until the test ends.
type server struct {
	lim  *Limiter
	ln   net.Listener
	addr string

	mu    sync.Mutex
	conns []net.Conn
	wg    sync.WaitGroup
}

func startServer(t *testing.T, network, addr string, cfg Config) *server {
	t.Helper()
	lim, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := net.Listen(network, addr)
	if err != nil {
		t.Fatalf("listen %s %s: %v (loopback must be up, IPv6 included)", network, addr, err)
	}
	s := &server{lim: lim, ln: lim.Listener(raw), addr: raw.Addr().String()}
	s.wg.Go(func() {
		for {
			c, err := s.ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns = append(s.conns, c)
			s.mu.Unlock()
			c.Write([]byte("+")) // tells the client it was accepted, once accepted() has it
		}
	})
	t.Cleanup(func() {
		s.ln.Close()
		s.wg.Wait()
		for _, c := range s.accepted() {
			c.Close()
		}
	})
	return s
}

func (s *server) accepted() []net.Conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]net.Conn(nil), s.conns...)
}

// dial connects from the loopback address from ("" for any). A connection the server resets
// before connect returns is returned as nil: refused.
func dial(t *testing.T, from, to string) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second}
	if from != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(from)}
	}
	c, err := d.Dial("tcp", to)
	if errors.Is(err, syscall.ECONNRESET) {
		return nil
	}
	if err != nil {
		t.Fatalf("dial %s from %s: %v", to, from, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// refused reports whether the server closed c without a word, rather than accepting it (see
// startServer).
func refused(c net.Conn) bool {
	if c == nil {
		return true
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := c.Read(make([]byte, 1))
	return err != nil
}

func statsAre(l *Limiter, want Stats) func() error {
	return func() error {
		if got := l.Stats(); got != want {
			return fmt.Errorf("stats %+v, want %+v", got, want)
		}
		return nil
	}
}

func TestPerAddrCap(t *testing.T) {
	var logs syncbuf.Buffer
	reg := prometheus.NewRegistry()
	s := startServer(t, "tcp", "127.0.0.1:0", Config{MaxConns: 100, MaxConnsPerAddr: 3, FDReserve: -1,
		Registerer: reg, Subsystem: "test", Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	var clients []net.Conn
	for range 8 {
		clients = append(clients, dial(t, "127.0.0.2", s.addr))
	}
	wait.For(t, 5*time.Second, statsAre(s.lim, Stats{Open: 3, Max: 100, RefusedPerAddr: 5}))
	n := 0
	for _, c := range clients {
		if refused(c) {
			n++
		}
	}
	if n != 5 {
		t.Errorf("%d of 8 connections from one address refused, want 5", n)
	}
	// Another address has its own count.
	dial(t, "127.0.0.3", s.addr)
	wait.For(t, 5*time.Second, statsAre(s.lim, Stats{Open: 4, Max: 100, RefusedPerAddr: 5}))
	// A slot given back is taken again.
	s.accepted()[0].Close()
	dial(t, "127.0.0.2", s.addr)
	wait.For(t, 5*time.Second, statsAre(s.lim, Stats{Open: 4, Max: 100, RefusedPerAddr: 5}))
	// The limiter counts a connection before the server's loop records it.
	wait.For(t, 5*time.Second, func() error {
		if got := len(s.accepted()); got != 5 {
			return fmt.Errorf("%d connections accepted, want 5", got)
		}
		return nil
	})

	if got := promtest.Value(t, reg, "dt_test_conns_refused_total", "reason="+ReasonPerAddr); got != 5 {
		t.Errorf("dt_test_conns_refused_total{reason=per_ip} = %v, want 5", got)
	}
	if lines := strings.Count(logs.String(), "too many from one address"); lines != 1 {
		t.Errorf("%d log lines for one burst of refusals, want 1:\n%s", lines, logs.String())
	}
}

func TestTotalCap(t *testing.T) {
	reg := prometheus.NewRegistry()
	s := startServer(t, "tcp", "127.0.0.1:0", Config{MaxConns: 4, MaxConnsPerAddr: 2, FDReserve: -1, Registerer: reg, Subsystem: "test"})
	var clients []net.Conn
	for i := range 6 {
		clients = append(clients, dial(t, fmt.Sprintf("127.0.0.%d", 2+i), s.addr))
	}
	wait.For(t, 5*time.Second, statsAre(s.lim, Stats{Open: 4, Max: 4, RefusedTotal: 2}))
	for i, c := range clients[4:] {
		if !refused(c) {
			t.Errorf("connection %d past the total cap was not refused", 4+i)
		}
	}
	if got := promtest.Value(t, reg, "dt_test_conns_open"); got != 4 {
		t.Errorf("dt_test_conns_open = %v, want 4", got)
	}
	if got := promtest.Value(t, reg, "dt_test_conns_refused_total", "reason="+ReasonTotal); got != 2 {
		t.Errorf("dt_test_conns_refused_total{reason=total} = %v, want 2", got)
	}
}

// Over ::1, connections count against their /64.
func TestPerAddrCapIPv6(t *testing.T) {
	s := startServer(t, "tcp6", "[::1]:0", Config{MaxConns: 100, MaxConnsPerAddr: 2, FDReserve: -1})
	var clients []net.Conn
	for range 3 {
		clients = append(clients, dial(t, "", s.addr))
	}
	wait.For(t, 5*time.Second, statsAre(s.lim, Stats{Open: 2, Max: 100, RefusedPerAddr: 1}))
	if !refused(clients[2]) {
		t.Error("the third connection from ::1 was not refused")
	}
	s.lim.mu.Lock()
	defer s.lim.mu.Unlock()
	if n := s.lim.byAddr[netip.MustParseAddr("::")]; n != 2 {
		t.Errorf("::/64 holds %d connections, want 2 (%v)", n, s.lim.byAddr)
	}
}

// 1,000 connections opened and closed, each closed twice by the server, leave no slot taken:
// with a cap of 1 per address, each would otherwise lock out the next.
func TestSlotsReleased(t *testing.T) {
	lim, err := New(Config{MaxConns: 10, MaxConnsPerAddr: 1, FDReserve: -1})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := lim.Listener(raw)
	defer ln.Close()
	for i := range 1000 {
		c, err := net.Dial("tcp", raw.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		sc, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		sc.Close()
		sc.Close()
		c.Close()
		if got := lim.Stats().Open; got != 0 {
			t.Fatalf("cycle %d: %d slots taken after close", i, got)
		}
	}
	lim.mu.Lock()
	defer lim.mu.Unlock()
	if len(lim.byAddr) != 0 {
		t.Fatalf("addresses left counted: %v", lim.byAddr)
	}
}

// A refused connection does not hold the accept loop: behind a flood of refusals, a connection
// from another address is accepted.
func TestRefusalDoesNotBlockAccept(t *testing.T) {
	s := startServer(t, "tcp", "127.0.0.1:0", Config{MaxConns: 100, MaxConnsPerAddr: 1, FDReserve: -1})
	dial(t, "127.0.0.2", s.addr)
	for range 200 {
		if c := dial(t, "127.0.0.2", s.addr); c != nil {
			c.Close()
		}
	}
	dial(t, "127.0.0.3", s.addr)
	wait.For(t, 5*time.Second, func() error {
		if n := len(s.accepted()); n != 2 {
			return fmt.Errorf("%d accepted, want 2 (stats %+v)", n, s.lim.Stats())
		}
		return nil
	})
}

var _ io.ReaderFrom = (*TCPConn)(nil)
