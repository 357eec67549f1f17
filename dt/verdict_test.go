package dt

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dt-cdn/dt/dt/internal/hlc"
)

// grantBlog has master grant pub the blog's scope and waits until every node holds the grant.
func grantBlog(t *testing.T, master *testNode, pub ed25519.PublicKey, nodes ...*testNode) Grant {
	t.Helper()
	g, err := master.Grant(ctxTimeout(t, 20*time.Second), pub, []GrantRule{
		{Prefix: "blob/", Ops: OpPut}, {Prefix: "site/blog/", Ops: OpPut | OpDelete},
	})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, func() error {
		for _, n := range nodes {
			if _, ok := n.grants.get(pub); !ok {
				return fmt.Errorf("%s has not seen the grant", n.name)
			}
		}
		return nil
	})
	return g
}

// hostileWriter starts a node that signs with key and trusts it as a master besides the
// network's: a publisher that skips its own grant check (a hostile one, or one of a release
// without it). Its own table takes whatever it writes; the network judges it.
func hostileWriter(t *testing.T, keys Keys, key ed25519.PrivateKey, peer string) *testNode {
	t.Helper()
	wk := keys
	wk.Master = key
	wk.Masters = append(slices.Clone(keys.Masters), key.Public().(ed25519.PublicKey))
	w := startNode(t, "writer", wk, "", asMaster(), peers(peer))
	if err := w.WaitSynced(ctxTimeout(t, 20*time.Second)); err != nil {
		t.Fatal(err)
	}
	return w
}

// TestRefusalReportedToWriter has a publisher key granted the blog write site/docs/current
// through a relay, skipping its own check: the relay refuses it and tells the writer why, so
// WaitReplicated returns ErrRefused with the relay's reason at once, and no honest node applies
// the record. A later write's wait reports the refusal too (the acknowledgement it waits for
// covers the refused record); an honest publisher with the same key, through the same relay,
// writes within the grant.
func TestRefusalReportedToWriter(t *testing.T) {
	keys := testKeys(t)
	_, publisher, _ := ed25519.GenerateKey(nil)
	pub := publisher.Public().(ed25519.PublicKey)
	relay := startNode(t, "relay", keys, "", listenOn("127.0.0.1:0"))
	far := startNode(t, "far", keys, "", peers(relay.addr()))
	master := startNode(t, "master", keys, "", asMaster(), peers(relay.addr()))
	grantBlog(t, master, pub, relay, far)
	w := hostileWriter(t, keys, publisher, relay.addr())
	ctx := ctxTimeout(t, 30*time.Second)

	if err := w.Put(ctx, "site/docs/current", []byte(`"evil"`)); err != nil {
		t.Fatalf("the writer's own table refused: %v", err)
	}
	err := w.WaitReplicated(ctx, "site/docs/current", 1)
	var ve *VerdictError
	if !errors.Is(err, ErrRefused) || !errors.As(err, &ve) {
		t.Fatalf("WaitReplicated: %v, want ErrRefused", err)
	}
	want := fmt.Sprintf("key site/docs/current is outside the grant of publisher %s (scope blob/ put, site/blog/ put,delete)", Fingerprint(pub))
	if !strings.Contains(ve.Reason, want) || ve.Peer != relay.ID() {
		t.Fatalf("verdict from %s: %q, want %q from the relay", ve.Peer.Short(), ve.Reason, want)
	}
	if err := w.Put(ctx, "site/blog/next", []byte(`"v0"`)); err != nil {
		t.Fatal(err)
	}
	if err := w.WaitReplicated(ctx, "site/blog/next", 1); !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "site/docs/current") {
		t.Fatalf("a later write's wait: %v, want the refusal of site/docs/current", err)
	}
	pkeys := keys.plain()
	pkeys.Publisher = publisher
	honest := startNode(t, "publisher", pkeys, "", asMaster(), peers(relay.addr()))
	waitFor(t, 20*time.Second, func() error {
		if _, ok := honest.grants.get(pub); !ok {
			return errors.New("the publisher has not seen its grant")
		}
		return nil
	})
	if err := honest.Put(ctx, "site/blog/current", []byte(`"v1"`)); err != nil {
		t.Fatal(err)
	}
	if err := honest.WaitReplicated(ctx, "site/blog/current", 1); err != nil {
		t.Fatalf("a write within the grant: %v", err)
	}
	waitFor(t, 20*time.Second, func() error {
		if !far.Has("site/blog/current") {
			return errors.New("far lacks site/blog/current")
		}
		return nil
	})
	for _, n := range []*testNode{relay, far, master, honest} {
		if n.Has("site/docs/current") {
			t.Errorf("%s applied a record outside its signer's grant", n.name)
		}
	}
	if got := counterValue(t, relay.metrics.verdictsSent.WithLabelValues("refused")); got != 1 {
		t.Errorf("relay sent %v refusals, want 1", got)
	}
}

// TestUngrantedWriterPendingThenRefused has a key nobody granted write through a relay: the relay
// keeps the record waiting for a grant and says so once, then, the link caught up and still no
// grant, refuses it as forged and says why; the writer's WaitReplicated returns ErrRefused
// with "no grant for publisher <fp>".
func TestUngrantedWriterPendingThenRefused(t *testing.T) {
	keys := testKeys(t)
	_, stranger, _ := ed25519.GenerateKey(nil)
	relay := startNode(t, "relay", keys, "", listenOn("127.0.0.1:0"))
	w := hostileWriter(t, keys, stranger, relay.addr())
	ctx := ctxTimeout(t, 30*time.Second)
	if err := w.Put(ctx, "site/blog/current", []byte(`"v1"`)); err != nil {
		t.Fatal(err)
	}
	err := w.WaitReplicated(ctx, "site/blog/current", 1)
	want := "no grant for publisher " + Fingerprint(stranger.Public().(ed25519.PublicKey))
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), want) {
		t.Fatalf("WaitReplicated: %v, want ErrRefused with %q", err, want)
	}
	if got := counterValue(t, w.metrics.verdictsReceived.WithLabelValues("pending")); got != 1 {
		t.Errorf("the writer heard %v pending verdicts, want 1", got)
	}
	if relay.Has("site/blog/current") {
		t.Error("the relay applied a record of an ungranted key")
	}
}

// TestVerdictFrameRoundTrip checks the frame's encoding against its decoder, and the limits.
func TestVerdictFrameRoundTrip(t *testing.T) {
	v := verdictNote{verdict: VerdictRefused, id: RecordID{1, 2}, signer: [32]byte{3}, clock: 1 << 40,
		key: "site/docs/current", reason: "key site/docs/current is outside the grant of publisher 0102"}
	got, err := parseVerdict(v.marshal())
	if err != nil || got != v {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	for name, bad := range map[string]verdictNote{
		"long key":      {verdict: VerdictRefused, key: strings.Repeat("k", MaxKeySize+1)},
		"long reason":   {verdict: VerdictRefused, reason: strings.Repeat("r", MaxVerdictReason+1)},
		"control":       {verdict: VerdictRefused, reason: "a\x1b[2Jb"},
		"C1 control":    {verdict: VerdictRefused, reason: "a\u009bb"},
		"invalid UTF-8": {verdict: VerdictRefused, reason: "\xff"},
	} {
		if _, err := parseVerdict(bad.marshal()); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", name, err)
		}
	}
	if _, err := parseVerdict(append(v.marshal(), 0)); !errors.Is(err, ErrMalformed) {
		t.Errorf("trailing byte: %v", err)
	}
	long := noteOf(VerdictRefused, &Record{Master: make([]byte, 32), Key: "k"}, RecordID{}, strings.Repeat("é", MaxVerdictReason))
	if len(long.reason) > MaxVerdictReason {
		t.Errorf("reason of %d bytes sent, limit %d", len(long.reason), MaxVerdictReason)
	}
	if _, err := parseVerdict(long.marshal()); err != nil {
		t.Errorf("a cut reason does not parse: %v", err)
	}
	odd := noteOf(VerdictRefused, &Record{Master: make([]byte, 32), Key: "site/\n\xff"}, RecordID{}, "key site/\n\xff\x1b is outside")
	if got, err := parseVerdict(odd.marshal()); err != nil || got.key != "site/\n\xff" || got.reason != "key site/??? is outside" {
		t.Errorf("a key of any bytes: %+v, %v", got, err)
	}
}

// TestUnknownFrameSkipped sends a peer frames of a type it does not know, as a node of this
// release sends frameVerdict to a node of an earlier one (whose link.dispatch is the same for
// unknown types): the peer skips them, keeps the link and goes on replicating.
func TestUnknownFrameSkipped(t *testing.T) {
	keys := testKeys(t)
	b := startNode(t, "b", keys, "", listenOn("127.0.0.1:0"))
	a := startNode(t, "a", keys, "", asMaster(), peers(b.addr()))
	ctx := ctxTimeout(t, 20*time.Second)
	if err := a.WaitSynced(ctx); err != nil {
		t.Fatal(err)
	}
	a.Node.mu.RLock()
	l := a.links[b.ID()]
	a.Node.mu.RUnlock()
	for _, typ := range []frameType{frameVerdict + 1, 0x7f, 0xff} {
		if !l.send(typ, bytes.Repeat([]byte{0xa5}, 100)) {
			t.Fatal("link closed")
		}
	}
	if err := a.Put(ctx, "after", []byte(`1`)); err != nil {
		t.Fatal(err)
	}
	if err := a.WaitReplicated(ctx, "after", 1); err != nil {
		t.Fatal(err)
	}
	if b.Status().Peers != 1 || len(b.eventsOf(EventError)) != 0 {
		t.Fatalf("b dropped the link or reported errors: %v", b.eventsOf(EventError))
	}
}

func FuzzParseVerdict(f *testing.F) {
	f.Add(verdictNote{verdict: VerdictPending, key: "site/blog/current", reason: "no grant"}.marshal())
	f.Add(verdictNote{verdict: 9, clock: 1 << 62}.marshal())
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := parseVerdict(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if len(v.key) > MaxKeySize || len(v.reason) > MaxVerdictReason {
			t.Fatalf("over the limits: key %d, reason %d bytes", len(v.key), len(v.reason))
		}
		again, err := parseVerdict(v.marshal())
		if err != nil || again != v {
			t.Fatalf("re-encoding reads back as %+v, %v; want %+v", again, err, v)
		}
	})
}

// linkTo returns n's link to peer.
func linkTo(t *testing.T, n *testNode, peer NodeID) *link {
	t.Helper()
	n.Node.mu.RLock()
	defer n.Node.mu.RUnlock()
	l := n.links[peer]
	if l == nil {
		t.Fatalf("%s has no link to %s", n.name, peer.Short())
	}
	return l
}

// TestPendingVerdictHoldsConfirmation passes a peer's verdicts on a master's record through the
// link's receive path: a peer that keeps the record waiting for a grant does not confirm it, so
// WaitReplicated gives up with ErrPending and the peer's reason; its later "applied" confirms it.
func TestPendingVerdictHoldsConfirmation(t *testing.T) {
	keys := testKeys(t)
	b := startNode(t, "b", keys, "", listenOn("127.0.0.1:0"))
	a := startNode(t, "a", keys, "", asMaster(), peers(b.addr()))
	ctx := ctxTimeout(t, 20*time.Second)
	if err := a.Put(ctx, "k", []byte(`1`)); err != nil {
		t.Fatal(err)
	}
	a.Node.mu.RLock()
	id := a.index["k"].id
	a.Node.mu.RUnlock()
	rec, _, err := a.recordByID(id)
	if err != nil {
		t.Fatal(err)
	}
	l := linkTo(t, a, b.ID())
	say := func(v Verdict, reason string) {
		t.Helper()
		if err := l.receiveVerdict(noteOf(v, rec, rec.ID(), reason).marshal()); err != nil {
			t.Fatal(err)
		}
	}
	say(VerdictPending, "no grant for publisher 00 yet")
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	err = a.WaitReplicated(short, "k", 1)
	var ve *VerdictError
	if !errors.Is(err, ErrPending) || !errors.As(err, &ve) || ve.Reason != "no grant for publisher 00 yet" || ve.Peer != b.ID() {
		t.Fatalf("WaitReplicated while pending: %v", err)
	}
	say(VerdictApplied, "the signer's grant came")
	if err := a.WaitReplicated(ctx, "k", 1); err != nil {
		t.Fatalf("WaitReplicated once applied: %v", err)
	}
}

// TestVerdictBudgetPerLink has a node try to send a peer far more verdicts than its budget at
// once: at most VerdictBurst plus VerdictRate per second elapsed go, the rest are counted as
// dropped, and the peer, which wrote none of the records, ignores every one it gets.
func TestVerdictBudgetPerLink(t *testing.T) {
	keys := testKeys(t)
	b := startNode(t, "b", keys, "", listenOn("127.0.0.1:0"))
	a := startNode(t, "a", keys, "", peers(b.addr()))
	if err := a.WaitSynced(ctxTimeout(t, 20*time.Second)); err != nil {
		t.Fatal(err)
	}
	linkTo(t, a, b.ID())
	const tries = 1000
	rec := signedRecord(a.Node, keys.Master, KindPut, "site/blog/x", []byte(`1`), hlc.FromTime(time.Now()))
	began := time.Now()
	for range tries {
		a.sendVerdict(b.ID(), VerdictRefused, rec, rec.ID(), func() string { return "no grant for publisher 00" })
	}
	elapsed := time.Since(began)
	sent := counterValue(t, a.metrics.verdictsSent.WithLabelValues("refused"))
	dropped := counterValue(t, a.metrics.verdictsDropped)
	if limit := VerdictBurst + VerdictRate*elapsed.Seconds() + 1; sent > limit || sent < VerdictBurst || sent+dropped != tries {
		t.Fatalf("%v sent (limit %.0f after %s, at least %d), %v dropped, of %d", sent, limit, elapsed, VerdictBurst, dropped, tries)
	}
	waitFor(t, 20*time.Second, func() error {
		if got := counterValue(t, b.metrics.verdictsIgnored); got != sent {
			return fmt.Errorf("b ignored %v verdicts of %v", got, sent)
		}
		return nil
	})
}

// TestHeldVerdictsBounded has a peer refuse more of a writer's records than the writer keeps
// verdicts for: it keeps maxHeldVerdicts, forgets the least recently noted (counted), and a
// wait on a record whose verdict it still holds reports it.
func TestHeldVerdictsBounded(t *testing.T) {
	keys := testKeys(t)
	b := startNode(t, "b", keys, "", listenOn("127.0.0.1:0"))
	a := startNode(t, "a", keys, "", asMaster(), peers(b.addr()))
	ctx := ctxTimeout(t, 30*time.Second)
	const extra = 10
	names := make([]string, maxHeldVerdicts+extra)
	bodies := make([][]byte, len(names))
	for i := range names {
		names[i], bodies[i] = fmt.Sprintf("k/%d", i), []byte(`1`)
	}
	if err := a.PutMany(ctx, names, bodies); err != nil {
		t.Fatal(err)
	}
	l := linkTo(t, a, b.ID())
	for _, name := range names {
		a.Node.mu.RLock()
		id := a.index[name].id
		a.Node.mu.RUnlock()
		rec, _, err := a.recordByID(id)
		if err != nil {
			t.Fatal(err)
		}
		if err := l.receiveVerdict(noteOf(VerdictRefused, rec, id, "refused "+name).marshal()); err != nil {
			t.Fatal(err)
		}
	}
	a.verdictMu.Lock()
	held := a.verdicts.len()
	a.verdictMu.Unlock()
	if held != maxHeldVerdicts || a.verdictsForgotten() != extra {
		t.Fatalf("%d verdicts held, %d forgotten; want %d, %d", held, a.verdictsForgotten(), maxHeldVerdicts, extra)
	}
	last := names[len(names)-1]
	if err := a.WaitReplicated(ctx, last, 1); !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "refused "+last) {
		t.Fatalf("WaitReplicated(%s): %v", last, err)
	}
}
