package zone

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dt-cdn/dt/dt"
	"github.com/dt-cdn/dt/internal/testkit/testnet"
	"github.com/dt-cdn/dt/internal/testkit/wait"
)

// TestPublishThroughTheTable publishes a zone from a master to a peer over loopback, edits and
// republishes it, then removes it, and checks after each step that the peer holds what the zone
// file says: Held, Diff, Write, Listing, Removal and Remove together.
func TestPublishThroughTheTable(t *testing.T) {
	keys, plain := testnet.Keys(t)
	peer := testnet.Node(t, testnet.Options{Keys: plain, Listen: true})
	testnet.Drain(peer)
	master := testnet.Node(t, testnet.Options{Keys: keys, Master: true, Peers: []string{testnet.Addr(peer)}})
	testnet.Drain(master)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := master.WaitSynced(ctx); err != nil {
		t.Fatal(err)
	}
	// publish writes z from the master and returns the changes it wrote once the peer holds them.
	publish := func(z *Zone) Changes {
		t.Helper()
		have, err := Held(ctx, master, z.Apex)
		if err != nil {
			t.Fatal(err)
		}
		c, err := Diff(z, have)
		if err != nil {
			t.Fatal(err)
		}
		if err := Write(ctx, master, c); err != nil {
			t.Fatal(err)
		}
		peerHolds(t, ctx, peer, z)
		return c
	}

	z := mustParse(t, exampleZone)
	if c := publish(z); len(c.Put) != len(z.Sets) || !c.ChangesSOA() {
		t.Errorf("first publish wrote %d sets (SOA among them: %t), want all %d", len(c.Put), c.ChangesSOA(), len(z.Sets))
	}
	have, err := Held(ctx, peer, z.Apex)
	if err != nil {
		t.Fatal(err)
	}
	sets, bad := Listing(have)
	if len(bad) != 0 || len(sets) != len(z.Sets) || sets[0][0].Header().Rrtype != dns.TypeSOA {
		t.Fatalf("listing: %d sets, errors %v; want %d sets, the SOA first", len(sets), bad, len(z.Sets))
	}
	if c := publish(z); !c.Empty() {
		t.Errorf("republishing the same zone wrote %+v", c)
	}

	edited := strings.Replace(exampleZone, "a.b.c   IN A   192.0.2.3\n", "", 1)
	edited = strings.Replace(edited, "2024010101", "2024010102", 1)
	if c := publish(mustParse(t, edited)); len(c.Delete) != 1 || len(c.Put) != 1 || !c.ChangesSOA() {
		t.Errorf("the edit wrote %d sets and removed %d, want the SOA and one removal", len(c.Put), len(c.Delete))
	}

	removal := Removal(slices.Collect(master.ObjectKeys()), z.Apex)
	if soa := (&Set{Zone: z.Apex, Name: z.Apex, Type: dns.TypeSOA}).Key(); len(removal) != len(z.Sets)-1 || removal[0] != soa {
		t.Fatalf("removal %v: want the zone's %d sets, the SOA first", removal, len(z.Sets)-1)
	}
	if err := Remove(ctx, master, removal, z.Apex); err != nil {
		t.Fatal(err)
	}
	wait.For(t, 10*time.Second, func() error {
		if left := Removal(slices.Collect(peer.ObjectKeys()), z.Apex); len(left) > 0 {
			return fmt.Errorf("the peer still holds %v", left)
		}
		return nil
	})
	if got := Removal(slices.Collect(master.ObjectKeys()), "other.example."); got != nil {
		t.Errorf("Removal of a zone the table lacks = %v", got)
	}
}

// peerHolds waits until n holds exactly z's RRsets.
func peerHolds(t *testing.T, ctx context.Context, n *dt.Node, z *Zone) {
	t.Helper()
	want := map[string][]byte{}
	for i := range z.Sets {
		body, err := z.Sets[i].Marshal()
		if err != nil {
			t.Fatal(err)
		}
		want[z.Sets[i].Key()] = body
	}
	wait.For(t, 10*time.Second, func() error {
		have, err := Held(ctx, n, z.Apex)
		if err != nil {
			return err
		}
		if !maps.EqualFunc(have, want, func(a, b []byte) bool { return string(a) == string(b) }) {
			return fmt.Errorf("the peer holds %d sets, want %d", len(have), len(want))
		}
		return nil
	})
}
