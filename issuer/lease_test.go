package issuer

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/dt-cdn/dt/dt"
	"github.com/dt-cdn/dt/internal/testkit/testnet"
	"github.com/dt-cdn/dt/internal/testkit/wait"
)

// testLeaseConfig is a lease with loopback timers: seconds instead of minutes.
func testLeaseConfig(n *dt.Node) LeaseConfig {
	return LeaseConfig{Table: n, Holder: n.ID().String(), Duration: 3 * time.Second,
		Renew: 500 * time.Millisecond, Settle: 300 * time.Millisecond}
}

// actors records which holders act, and how many act at once.
type actors struct {
	mu      sync.Mutex
	now     int
	most    int
	holders []string
}

func (a *actors) act(holder string) func(context.Context) {
	return func(ctx context.Context) {
		a.mu.Lock()
		a.now++
		a.most = max(a.most, a.now)
		a.holders = append(a.holders, holder)
		a.mu.Unlock()
		<-ctx.Done()
		a.mu.Lock()
		a.now--
		a.mu.Unlock()
	}
}

func (a *actors) snapshot() (most int, holders []string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.most, append([]string(nil), a.holders...)
}

// issuerNodes starts a hub and n writer nodes (the master key works as an issuer key) linked
// to it.
func issuerNodes(t *testing.T, n int) (hub *dt.Node, writers []*dt.Node) {
	t.Helper()
	master, plain := testnet.Keys(t)
	hub = testnet.Node(t, testnet.Options{Keys: plain, Listen: true})
	testnet.Drain(hub)
	for range n {
		w := testnet.Node(t, testnet.Options{Keys: master, Master: true, Peers: []string{testnet.Addr(hub)}})
		testnet.Drain(w)
		writers = append(writers, w)
	}
	for _, w := range writers {
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		if err := w.WaitSynced(ctx); err != nil {
			t.Fatal(err)
		}
		cancel()
	}
	return hub, writers
}

func TestLeaseOneHolderThenSuccessor(t *testing.T) {
	_, nodes := issuerNodes(t, 2)
	var a actors
	stops := map[string]context.CancelFunc{}
	var wg sync.WaitGroup
	defer func() {
		for _, stop := range stops {
			stop()
		}
		wg.Wait()
	}()
	for _, n := range nodes {
		l, err := NewLease(testLeaseConfig(n))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		stops[n.ID().String()] = cancel
		wg.Go(func() {
			if err := l.Run(ctx, a.act(n.ID().String())); err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	wait.For(t, 30*time.Second, func() error {
		if _, h := a.snapshot(); len(h) == 0 {
			return errors.New("no issuer holds the lease")
		}
		return nil
	})
	// Let the holder renew several times: the other must never act meanwhile.
	first, _, _ := leaseOf(t, nodes[0])
	renewals := 0
	last, _ := nodes[0].Version(LeaseKey)
	wait.For(t, 30*time.Second, func() error {
		if v, _ := nodes[0].Version(LeaseKey); v != last {
			last, renewals = v, renewals+1
		}
		if renewals < 4 {
			return fmt.Errorf("%d renewals seen", renewals)
		}
		return nil
	})
	most, holders := a.snapshot()
	if most != 1 || len(holders) != 1 || holders[0] != first.Holder {
		t.Fatalf("acted: %v (at most %d at once), lease names %s; want the lease holder alone", holders, most, first.Holder)
	}

	// The holder stops without releasing; the other takes over once the lease expires.
	stops[first.Holder]()
	wait.For(t, 30*time.Second, func() error {
		if _, h := a.snapshot(); len(h) < 2 {
			return errors.New("no successor yet")
		}
		return nil
	})
	most, holders = a.snapshot()
	if most != 1 || len(holders) != 2 || holders[1] == first.Holder {
		t.Fatalf("acted: %v (at most %d at once); want the first holder, then the other", holders, most)
	}
}

func leaseOf(t *testing.T, n *dt.Node) (LeaseRecord, time.Time, bool) {
	t.Helper()
	l, err := NewLease(testLeaseConfig(n))
	if err != nil {
		t.Fatal(err)
	}
	return l.Current(t.Context())
}

func TestLeaseExpiryCappedByRecordClock(t *testing.T) {
	_, nodes := issuerNodes(t, 1)
	n := nodes[0]
	far := time.Now().Add(24 * time.Hour).Unix()
	if err := n.Put(t.Context(), LeaseKey, fmt.Appendf(nil, `{"v":1,"holder":"other","expires":%d}`, far)); err != nil {
		t.Fatal(err)
	}
	r, expires, ok := leaseOf(t, n)
	if !ok || r.Holder != "other" {
		t.Fatalf("Current: %+v, %v", r, ok)
	}
	clock, _ := n.Version(LeaseKey)
	if want := clockTime(clock).Add(3 * time.Second); !expires.Equal(want) {
		t.Errorf("expires %v, want the record's clock plus the lease duration, %v", expires, want)
	}
}

func TestParseLease(t *testing.T) {
	good := `{"v":1,"holder":"ab","expires":5}`
	if r, err := ParseLease([]byte(good)); err != nil || r.Holder != "ab" || r.Expires != 5 {
		t.Fatalf("ParseLease(%s) = %+v, %v", good, r, err)
	}
	for name, in := range map[string]string{"not json": "{", "trailing": good + "{}", "version": `{"v":2,"holder":"ab","expires":5}`,
		"no holder": `{"v":1,"expires":5}`, "no expiry": `{"v":1,"holder":"ab"}`,
		"long holder": fmt.Sprintf(`{"v":1,"holder":"%065d","expires":5}`, 0),
		"too large":   fmt.Sprintf(`{"v":1,"holder":"ab","expires":5,"x":"%0600d"}`, 0)} {
		if _, err := ParseLease([]byte(in)); !errors.Is(err, ErrInvalidLease) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func FuzzParseLease(f *testing.F) {
	f.Add([]byte(`{"v":1,"holder":"ab","expires":5}`))
	f.Add([]byte(`{"v":1,"holder":"","expires":-1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseLease(b)
		if err != nil {
			return
		}
		if r.V != 1 || r.Holder == "" || len(r.Holder) > MaxHolderLen || r.Expires <= 0 {
			t.Fatalf("accepted %+v", r)
		}
	})
}

func TestLeaseRefusedRecord(t *testing.T) {
	_, nodes := issuerNodes(t, 1)
	n := nodes[0]
	if err := n.Put(t.Context(), LeaseKey, []byte(`{"v":9,"holder":"x","expires":1}`)); err != nil {
		t.Fatal(err)
	}
	cfg := testLeaseConfig(n)
	refused := 0
	cfg.Refused = func() { refused++ }
	l, err := NewLease(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, ok := l.Current(t.Context()); ok || refused != 1 {
		t.Errorf("Current of a malformed lease: held %v, refused %d times; want no lease, refused once", ok, refused)
	}
}

func TestConfigRefusesLeaseTimers(t *testing.T) {
	cfg := Config{Lease: LeaseConfig{Duration: time.Second, Renew: time.Second}}
	cfg.Host.Node.DataDir = t.TempDir()
	if _, err := New(cfg); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("New with a renewal no shorter than the lease: %v", err)
	}
	if _, err := NewLease(LeaseConfig{Holder: "x"}); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("NewLease without a table: %v", err)
	}
}
