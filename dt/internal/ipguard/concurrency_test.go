package ipguard

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// TestConcurrentUse drives one guard from many goroutines with every operation mixed; run it
// with -race. Afterwards every slot must be released and the bookkeeping consistent.
func TestConcurrentUse(t *testing.T) {
	store := &memStore{}
	h := newHarness(t, Config{
		Store: store, MaxKeys: 64, MaxHandshakes: 16, ConnRate: 1, ConnBurst: 3,
		FailureThreshold: 3, SubnetThreshold: 3, WarnConnections: 10, BlockConnections: 40,
	})
	addrs := make([]netip.Addr, 0, 200)
	for i := range 100 {
		addrs = append(addrs, netip.MustParseAddr(fmt.Sprintf("10.0.0.%d", i)))
		addrs = append(addrs, netip.MustParseAddr(prefix64(9, i%50)))
	}
	end := func(r *rand.Rand, tk *Ticket) {
		switch r.IntN(3) {
		case 0:
			tk.Succeeded()
		case 1:
			tk.Failed(FailBadKey)
		default:
			tk.Abandoned()
		}
	}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 1))
			var open []*Ticket // handshakes this worker has in flight
			for range 3000 {
				a := addrs[r.IntN(len(addrs))]
				switch op := r.IntN(20); {
				case op < 12:
					if len(open) == 3 { // 8 workers × 3 exceed the 16 slots: some Admits find them full
						end(r, open[0])
						open = open[1:]
					}
					if tk, err := h.Admit(a); err == nil {
						open = append(open, tk)
					}
				case op < 15 && len(open) > 0:
					i := r.IntN(len(open))
					end(r, open[i])
					open = append(open[:i], open[i+1:]...)
				case op < 16:
					h.clock.Advance(time.Duration(r.IntN(5000)) * time.Millisecond)
				case op < 17:
					h.Blocks()
				case op < 18:
					h.Blocked(a)
				case op < 19:
					_, _ = h.Unblock(KeyOf(a))
				default:
					h.reg.Gather()
				}
			}
			for _, tk := range open {
				end(r, tk)
			}
		})
	}
	wg.Wait()
	if got := h.metric(t, "handshakes_in_flight"); got != 0 {
		t.Fatalf("%v handshakes still in flight after every ticket ended", got)
	}
	t.Logf("blocks: %v by failures, %v by connections, %v subnets; %v unblocks; %v rate-limited, %v busy",
		h.metric(t, "blocks_total", "reason", BlockReasonFailures), h.metric(t, "blocks_total", "reason", BlockReasonConnections),
		h.metric(t, "blocks_total", "reason", BlockReasonSubnet), h.metric(t, "unblocks_total"),
		h.metric(t, "refused_total", "reason", "rate"), h.metric(t, "refused_total", "reason", "handshakes_full"))
	// The last save holds the current block list.
	stored, err := decodeState(store.data)
	if err != nil {
		t.Fatal(err)
	}
	now := h.clock.Now()
	var inForce []Block
	for _, b := range stored {
		if b.Until.After(now) {
			inForce = append(inForce, b)
		}
	}
	if got := h.Blocks(); len(got) != len(inForce) {
		t.Fatalf("the store holds %d blocks in force, the guard %d", len(inForce), len(got))
	}
}

// TestDefaultClockUnderSynctest runs a guard on its default clock, time.Now, inside a synctest
// bubble, where time.Sleep advances a fake clock instantly.
func TestDefaultClockUnderSynctest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g, err := New(Config{})
		if err != nil {
			t.Fatal(err)
		}
		addr := netip.MustParseAddr("2001:db8::5")
		for i := range 5 {
			tk, err := g.Admit(addr)
			if err != nil {
				t.Fatalf("Admit %d: %v", i, err)
			}
			time.Sleep(time.Minute)
			tk.Failed(FailTimeout)
		}
		until, ok := g.Blocked(addr)
		if !ok || !until.Equal(time.Now().Add(time.Hour)) {
			t.Fatalf("Blocked = %v, %v; want until an hour from now", until, ok)
		}
		time.Sleep(time.Hour)
		if _, err := g.Admit(addr); err != nil {
			t.Fatalf("Admit after the block ended: %v", err)
		}
	})
}
