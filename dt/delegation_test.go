package dt

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dt-cdn/dt/dt/internal/hlc"
)

// delivery is a signed record with its body, as a peer would deliver it.
type delivery struct {
	name string
	rec  *Record
	body []byte
}

// signedRecord makes a record of the node's table signed by key.
func signedRecord(n *Node, key ed25519.PrivateKey, kind Kind, tableKey string, body []byte, clock hlc.Timestamp) *Record {
	r := &Record{Table: n.table, Epoch: n.cfg.Epoch, Kind: kind, Clock: uint64(clock), Key: tableKey}
	if kind == KindPut {
		r.Hash, r.Size = sha256.Sum256(body), uint64(len(body))
	}
	r.sign(key)
	return r
}

// deliver hands records to the node's applier as records from a peer, one by one, and waits
// until each is committed (applied, kept pending or refused).
func deliver(t *testing.T, n *Node, ds ...delivery) {
	t.Helper()
	for _, d := range ds {
		done := make(chan struct{})
		op := applyOp{rec: d.rec, id: d.rec.ID(), body: d.body, origin: NodeID{1}, committed: func() { close(done) }}
		if err := n.submit(t.Context(), op); err != nil {
			t.Fatal(err)
		}
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("%s not committed", d.name)
		}
	}
}

// tableState is what a node holds: key → current record id.
func tableState(n *Node) map[string]RecordID {
	n.mu.RLock()
	defer n.mu.RUnlock()
	out := map[string]RecordID{}
	for k, e := range n.index {
		out[k] = e.id
	}
	return out
}

func permutations[T any](s []T) [][]T {
	if len(s) <= 1 {
		return [][]T{append([]T(nil), s...)}
	}
	var out [][]T
	for i := range s {
		rest := append(append([]T(nil), s[:i]...), s[i+1:]...)
		for _, p := range permutations(rest) {
			out = append(out, append([]T{s[i]}, p...))
		}
	}
	return out
}

// grantScenario is a grant, its revocation and a publisher's records around them, signed for n's
// table, with the state every node must end in.
func grantScenario(t *testing.T, n *Node, master, publisher ed25519.PrivateKey) ([]delivery, map[string]RecordID) {
	t.Helper()
	base := hlc.FromTime(time.Now().Add(-time.Minute))
	at := func(ms int) hlc.Timestamp { return base + hlc.Timestamp(ms)<<16 }
	pub := publisher.Public().(ed25519.PublicKey)
	g := Grant{Key: pub, NotBefore: at(0), Scope: []GrantRule{{Prefix: "site/blog/", Ops: OpPut | OpDelete}, {Prefix: "blob/", Ops: OpPut}}}
	gb, err := g.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	vb, err := g.Revoked(at(200)).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	ds := []delivery{
		{"grant", signedRecord(n, master, KindPut, GrantKey(pub), gb, at(10)), gb},
		{"put before the revocation", signedRecord(n, publisher, KindPut, "site/blog/a", []byte(`"a"`), at(100)), []byte(`"a"`)},
		{"revocation", signedRecord(n, master, KindPut, GrantKey(pub), vb, at(200)), vb},
		{"put after the revocation", signedRecord(n, publisher, KindPut, "site/blog/b", []byte(`"b"`), at(300)), []byte(`"b"`)},
		{"put outside the scope", signedRecord(n, publisher, KindPut, "site/docs/x", []byte(`"x"`), at(150)), []byte(`"x"`)},
	}
	want := map[string]RecordID{GrantKey(pub): ds[2].rec.ID(), "site/blog/a": ds[1].rec.ID()}
	return ds, want
}

// TestGrantVerdictInEveryOrder delivers a grant, its revocation and a publisher's records in
// every order to separate nodes: each ends in the same state, the one the grant's window defines.
func TestGrantVerdictInEveryOrder(t *testing.T) {
	keys := testKeys(t)
	_, publisher, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	probe := startNode(t, "probe", keys, "")
	ds, want := grantScenario(t, probe.Node, keys.Master, publisher)
	for i, order := range permutations(ds) {
		var names []string
		for _, d := range order {
			names = append(names, d.name)
		}
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			n := startNode(t, fmt.Sprint("n", i), keys, "")
			deliver(t, n.Node, order...)
			if got := tableState(n.Node); !maps.Equal(got, want) {
				t.Fatalf("order %s: state %v, want %v", strings.Join(names, ", "), got, want)
			}
			if p := n.pendingCount.Load(); p != 0 {
				t.Fatalf("order %s: %d records still pending", strings.Join(names, ", "), p)
			}
			g, ok := n.grants.get(publisher.Public().(ed25519.PublicKey))
			if !ok || g.NotAfter == 0 {
				t.Fatalf("order %s: grant %+v, %v: want the revoked one", strings.Join(names, ", "), g, ok)
			}
			n.Close()
		})
	}
}

// TestGrantPendingBounded fills the pending set of a node with records of a signer without a
// grant: it keeps MaxPendingRecords, counts the rest as dropped, and applies what it kept once
// the grant arrives.
func TestGrantPendingBounded(t *testing.T) {
	keys := testKeys(t)
	_, publisher, _ := ed25519.GenerateKey(nil)
	n := startNode(t, "n", keys, "")
	now := hlc.FromTime(time.Now())
	var ds []delivery
	for i := range MaxPendingRecords + 10 {
		body := []byte(fmt.Sprintf("%d", i))
		ds = append(ds, delivery{fmt.Sprint(i), signedRecord(n.Node, publisher, KindPut, fmt.Sprintf("site/blog/%d", i), body, now), body})
	}
	deliver(t, n.Node, ds...)
	if got := n.pendingCount.Load(); got != MaxPendingRecords {
		t.Fatalf("pending %d, want %d", got, MaxPendingRecords)
	}
	if got := counterValue(t, n.metrics.pendingDropped); got != 10 {
		t.Fatalf("dt_records_pending_dropped_total %v, want 10", got)
	}
	if _, err := n.Get(t.Context(), "site/blog/0"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a pending record is readable: %v", err)
	}
	g := Grant{Key: publisher.Public().(ed25519.PublicKey), NotBefore: now - 1<<16, Scope: []GrantRule{{Prefix: "site/blog/", Ops: OpPut}}}
	gb, _ := g.Marshal()
	deliver(t, n.Node, delivery{"grant", signedRecord(n.Node, keys.Master, KindPut, GrantKey(g.Key), gb, now), gb})
	if got := n.pendingCount.Load(); got != 0 {
		t.Fatalf("pending %d after the grant", got)
	}
	if b, err := n.Get(t.Context(), "site/blog/0"); err != nil || string(b) != "0" {
		t.Fatalf("site/blog/0 after the grant: %q, %v", b, err)
	}
	if _, err := n.Get(t.Context(), fmt.Sprintf("site/blog/%d", MaxPendingRecords)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a dropped record was applied: %v", err)
	}
}

// TestGrantRecordsOfNonMasters checks what no grant allows: a grant written by a non-master is
// forged, and a malformed grant from a master grants nothing: its key's records are refused.
func TestGrantRecordsOfNonMasters(t *testing.T) {
	keys := testKeys(t)
	_, publisher, _ := ed25519.GenerateKey(nil)
	n := startNode(t, "n", keys, "")
	now := hlc.FromTime(time.Now())
	pub := publisher.Public().(ed25519.PublicKey)
	g := Grant{Key: pub, Scope: []GrantRule{{Prefix: "site/", Ops: OpPut}}}
	gb, _ := g.Marshal()
	selfGrant := signedRecord(n.Node, publisher, KindPut, GrantKey(pub), gb, now)
	if err := n.checkRecord(selfGrant, false); !errors.Is(err, ErrForged) {
		t.Fatalf("a grant signed by its grantee: %v", err)
	}
	bad := []byte(`{"key":"` + strings.Repeat("0", 64) + `"}`)
	deliver(t, n.Node,
		delivery{"malformed grant", signedRecord(n.Node, keys.Master, KindPut, GrantKey(pub), bad, now), bad},
		delivery{"put", signedRecord(n.Node, publisher, KindPut, "site/x", []byte(`1`), now+1), []byte(`1`)})
	if g, _ := n.grants.get(pub); len(g.Scope) != 0 || len(n.Grants()) != 0 {
		t.Fatal("a malformed grant granted something")
	}
	if _, err := n.Get(t.Context(), "site/x"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a record under a malformed grant was applied: %v", err)
	}
	if p, r := n.pendingCount.Load(), counterValue(t, n.metrics.recordsRefused); p != 0 || r != 1 {
		t.Fatalf("pending %d, refused %v: want a record under a malformed grant refused", p, r)
	}
}

// TestGrantRevocationResyncs runs two linked nodes: one applies a publisher's record that a
// revocation then invalidates, the other never applies it. After the revocation the first drops
// it and takes back, from its peer, the master's record it had replaced: both end equal.
func TestGrantRevocationResyncs(t *testing.T) {
	keys := testKeys(t)
	_, publisher, _ := ed25519.GenerateKey(nil)
	a := startNode(t, "a", keys, "", listenOn("127.0.0.1:0"))
	bDir := t.TempDir()
	b := startNode(t, "b", keys, bDir)
	base := hlc.FromTime(time.Now().Add(-time.Minute))
	at := func(ms int) hlc.Timestamp { return base + hlc.Timestamp(ms)<<16 }
	pub := publisher.Public().(ed25519.PublicKey)
	g := Grant{Key: pub, NotBefore: at(0), Scope: []GrantRule{{Prefix: "site/blog/", Ops: OpPut}}}
	gb, _ := g.Marshal()
	vb, _ := g.Revoked(at(200)).Marshal()
	old := delivery{"master's put", signedRecord(a.Node, keys.Master, KindPut, "site/blog/current", []byte(`"old"`), at(5)), []byte(`"old"`)}
	grant := delivery{"grant", signedRecord(a.Node, keys.Master, KindPut, GrantKey(pub), gb, at(10)), gb}
	late := delivery{"late put", signedRecord(a.Node, publisher, KindPut, "site/blog/current", []byte(`"late"`), at(300)), []byte(`"late"`)}
	revoke := delivery{"revocation", signedRecord(a.Node, keys.Master, KindPut, GrantKey(pub), vb, at(200)), vb}
	deliver(t, a.Node, old, grant, late)
	deliver(t, b.Node, old, revoke, late) // b never applies the late put
	if body, _ := a.Get(t.Context(), "site/blog/current"); string(body) != `"late"` {
		t.Fatalf("a holds %s before the revocation", body)
	}
	deliver(t, a.Node, revoke)
	if _, err := a.Get(t.Context(), "site/blog/current"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a still holds the revoked put: %v", err)
	}
	b.Close()
	b = startNode(t, "b", keys, bDir, peers(a.Addrs()[0].String()))
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	for !maps.Equal(tableState(a.Node), tableState(b.Node)) {
		if ctx.Err() != nil {
			t.Fatalf("not converged: a %v, b %v", tableState(a.Node), tableState(b.Node))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if body, err := a.Get(t.Context(), "site/blog/current"); err != nil || string(body) != `"old"` {
		t.Fatalf("a after the resync: %s, %v", body, err)
	}
}

// TestPublisherWritesWithinItsGrant runs a master, a relay and a node holding a publisher key
// over loopback: the publisher writes what its grant covers, and is refused at once, with the
// rule, outside it, before the grant and after its revocation; what it wrote before the
// revocation stays on the relay.
func TestPublisherWritesWithinItsGrant(t *testing.T) {
	keys := testKeys(t)
	_, publisher, _ := ed25519.GenerateKey(nil)
	pub := publisher.Public().(ed25519.PublicKey)
	relay := startNode(t, "relay", keys, "", listenOn("127.0.0.1:0"))
	master := startNode(t, "master", keys, "", asMaster(), peers(relay.addr()))
	pkeys := keys.plain()
	pkeys.Publisher = publisher
	pn := startNode(t, "publisher", pkeys, "", asMaster(), peers(relay.addr()))
	ctx := ctxTimeout(t, 20*time.Second)

	if err := pn.Put(ctx, "site/blog/current", []byte(`"v1"`)); !errors.Is(err, ErrOutsideGrant) || !strings.Contains(err.Error(), "no grant") {
		t.Fatalf("put before the grant: %v", err)
	}
	g := Grant{Key: pub, Scope: []GrantRule{{Prefix: "site/blog/", Ops: OpPut | OpDelete}, {Prefix: "blob/", Ops: OpPut}}}
	gb, _ := g.Marshal()
	if err := master.Put(ctx, GrantKey(pub), gb); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, func() error {
		if _, ok := pn.grants.get(pub); !ok {
			return errors.New("the publisher has not seen its grant")
		}
		return nil
	})
	if err := pn.Put(ctx, "site/blog/current", []byte(`"v1"`)); err != nil {
		t.Fatalf("put within the grant: %v", err)
	}
	waitFor(t, 20*time.Second, func() error {
		if b, err := relay.Get(ctx, "site/blog/current"); err != nil || string(b) != `"v1"` {
			return fmt.Errorf("relay holds %s, %v", b, err)
		}
		return nil
	})
	for _, tc := range []struct {
		what string
		err  error
	}{
		{"another site", pn.Put(ctx, "site/docs/current", []byte(`"x"`))},
		{"the site list", pn.Put(ctx, "sites/blog", []byte(`{}`))},
		{"a grant", pn.Put(ctx, GrantKey(pub), gb)},
		{"a blob delete", pn.Delete(ctx, "blob/abc")},
	} {
		if !errors.Is(tc.err, ErrOutsideGrant) {
			t.Errorf("%s: %v, want ErrOutsideGrant", tc.what, tc.err)
		}
	}
	revoked, _ := g.Revoked(master.clock.Now()).Marshal()
	if err := master.Put(ctx, GrantKey(pub), revoked); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, func() error {
		if g, _ := pn.grants.get(pub); g.NotAfter == 0 {
			return errors.New("the publisher has not seen its revocation")
		}
		return nil
	})
	if err := pn.Put(ctx, "site/blog/current", []byte(`"v2"`)); !errors.Is(err, ErrOutsideGrant) || !strings.Contains(err.Error(), "not_after") {
		t.Fatalf("put after the revocation: %v", err)
	}
	waitFor(t, 20*time.Second, func() error {
		if g, _ := relay.grants.get(pub); g.NotAfter == 0 {
			return errors.New("the relay has not seen the revocation")
		}
		return nil
	})
	if b, err := relay.Get(ctx, "site/blog/current"); err != nil || string(b) != `"v1"` {
		t.Fatalf("relay after the revocation: %s, %v: a put stamped before it stays", b, err)
	}
}

func TestGeneratePublisherKey(t *testing.T) {
	dir := t.TempDir()
	if err := GenerateKeys(dir, nil); err != nil {
		t.Fatal(err)
	}
	pub, err := GeneratePublisherKey(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := GeneratePublisherKey(dir, nil); !errors.Is(err, ErrKeyExists) {
		t.Fatalf("second key in one directory: %v", err)
	}
	keys, err := LoadKeys(dir)
	if err != nil {
		t.Fatal(err)
	}
	if keys.Publisher == nil || !keys.Publisher.Public().(ed25519.PublicKey).Equal(pub) {
		t.Fatalf("loaded publisher key %x, want %x", keys.Publisher, pub)
	}
	raw, err := os.ReadFile(filepath.Join(dir, PublisherPubKeyFile))
	if err != nil || strings.TrimSpace(string(raw)) != hex.EncodeToString(pub) {
		t.Fatalf("%s: %q, %v", PublisherPubKeyFile, raw, err)
	}
}

// TestUngrantedLargeBodyNotFetched has a key holder sign, with a key nobody granted, a record
// whose body does not travel inline: the relay does not fetch the body, and still reports the
// record as forged once the link caught up.
func TestUngrantedLargeBodyNotFetched(t *testing.T) {
	keys := testKeys(t)
	relay := startNode(t, "relay", keys, "", listenOn("127.0.0.1:0"))
	_, forgerKey, _ := ed25519.GenerateKey(nil)
	forgerKeys := keys
	forgerKeys.Master = forgerKey
	forgerKeys.Masters = []ed25519.PublicKey{forgerKey.Public().(ed25519.PublicKey)}
	forger := startNode(t, "forger", forgerKeys, "", asMaster(), peers(relay.addr()))
	big := []byte(`"` + strings.Repeat("x", 2*DefaultInlineBodyMax) + `"`)
	if err := forger.Put(ctxTimeout(t, 10*time.Second), "site/blog/big", big); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, func() error {
		for _, ev := range relay.eventsOf(EventError) {
			if errors.Is(ev.Err, ErrForged) && strings.Contains(ev.Err.Error(), "site/blog/big") {
				return nil
			}
		}
		return errors.New("relay reported no forged record")
	})
	if relay.store.hasBlob(sha256.Sum256(big)) {
		t.Fatal("the relay fetched the body of a record whose signer has no grant")
	}
	if got := counterValue(t, relay.metrics.pendingDropped); got < 1 {
		t.Fatalf("dt_records_pending_dropped_total %v", got)
	}
}

// TestGrantAgainKeepsWhatTheKeyWrote grants a publisher key, has it write, then grants it again,
// revokes it and grants it once more, as a master's dt grant and dt revoke do: what the key wrote
// under its first grant stays on every node throughout, and it writes again once granted again.
func TestGrantAgainKeepsWhatTheKeyWrote(t *testing.T) {
	keys := testKeys(t)
	_, publisher, _ := ed25519.GenerateKey(nil)
	pub := publisher.Public().(ed25519.PublicKey)
	relay := startNode(t, "relay", keys, "", listenOn("127.0.0.1:0"))
	master := startNode(t, "master", keys, "", asMaster(), peers(relay.addr()))
	pkeys := keys.plain()
	pkeys.Publisher = publisher
	pn := startNode(t, "publisher", pkeys, "", asMaster(), peers(relay.addr()))
	ctx := ctxTimeout(t, 20*time.Second)
	scope := []GrantRule{{Prefix: "site/blog/", Ops: OpPut | OpDelete}}
	seen := func(what string, want func(Grant) bool) {
		t.Helper()
		waitFor(t, 20*time.Second, func() error {
			for _, n := range []*testNode{relay, pn} {
				if g, ok := n.grants.get(pub); !ok || !want(g) {
					return fmt.Errorf("%s not seen yet", what)
				}
			}
			return nil
		})
	}
	first, err := master.Grant(ctx, pub, scope)
	if err != nil {
		t.Fatal(err)
	}
	seen("the grant", func(Grant) bool { return true })
	if err := pn.Put(ctx, "site/blog/current", []byte(`"v1"`)); err != nil {
		t.Fatal(err)
	}
	holds := func(when, want string) {
		t.Helper()
		waitFor(t, 20*time.Second, func() error {
			if b, err := relay.Get(ctx, "site/blog/current"); err != nil || string(b) != want {
				return fmt.Errorf("%s: relay holds %s, %v; want %s", when, b, err, want)
			}
			return nil
		})
	}
	holds("after the put", `"v1"`)

	again, err := master.Grant(ctx, pub, scope)
	if err != nil || again.NotBefore != first.NotBefore {
		t.Fatalf("granted again: not_before %d, the first grant's %d (%v)", again.NotBefore, first.NotBefore, err)
	}
	if _, err := master.Revoke(ctx, pub); err != nil {
		t.Fatal(err)
	}
	seen("the revocation", func(g Grant) bool { return g.NotAfter != 0 })
	if _, err := master.Grant(ctx, pub, scope); err != nil {
		t.Fatal(err)
	}
	seen("the grant after the revocation", func(g Grant) bool { return g.NotAfter == 0 })
	holds("granted again after the revocation", `"v1"`)
	if err := pn.Put(ctx, "site/blog/current", []byte(`"v2"`)); err != nil {
		t.Fatalf("put once granted again: %v", err)
	}
	holds("the put once granted again", `"v2"`)
}
