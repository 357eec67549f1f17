package publish

import (
	"context"
	"crypto/ed25519"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dt-cdn/dt/dt"
	"github.com/dt-cdn/dt/internal/testkit/testnet"
	"github.com/dt-cdn/dt/site"
)

// TestPublishRefusedByPeer publishes to the site docs signing with a key granted the blog, from
// a node that trusts that key itself (a publisher skipping its own check): the peer refuses the
// docs' records, and Publish returns at once an error wrapping dt.ErrRefused with the peer's
// reason; no edge follows the docs' pointer.
func TestPublishRefusedByPeer(t *testing.T) {
	keys, addr, edges := testNetwork(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	opts := NetworkOptions{Keys: keys, Peers: []string{addr}, HeartbeatInterval: testBeat, Wait: 20 * time.Second, Keep: 2, Node: dt.LocalConfig()}
	for _, name := range []string{"blog", "docs"} {
		if _, err := AddSite(ctx, name, []string{name + ".example.com"}, opts); err != nil {
			t.Fatal(err)
		}
	}
	_, publisher, _ := ed25519.GenerateKey(nil)
	pub := publisher.Public().(ed25519.PublicKey)
	master := testnet.Node(t, testnet.Options{Keys: keys, Master: true, Peers: []string{addr}})
	testnet.Drain(master)
	if _, err := master.Grant(ctx, pub, []dt.GrantRule{
		{Prefix: "blob/", Ops: dt.OpPut}, {Prefix: "deploy/", Ops: dt.OpPut}, {Prefix: "site/blog/", Ops: dt.OpPut | dt.OpDelete},
	}); err != nil {
		t.Fatal(err)
	}
	if err := master.WaitReplicated(ctx, dt.GrantKey(pub), 1); err != nil {
		t.Fatal(err)
	}
	hostile := opts
	hostile.Keys.Master = publisher
	hostile.Keys.Masters = append(slices.Clone(keys.Masters), pub)
	hostile.Site = "docs"
	dir := t.TempDir()
	writeSite(t, dir, map[string]string{"index.html": "<h1>not the blog's</h1>"})
	plan, err := Scan(ctx, dir, ScanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer plan.Close()
	_, err = Publish(ctx, plan, hostile)
	if !errors.Is(err, dt.ErrRefused) || !strings.Contains(err.Error(), "is outside the grant of publisher "+dt.Fingerprint(pub)) {
		t.Fatalf("Publish: %v, want dt.ErrRefused with the peer's reason", err)
	}
	if edges[0].node.Has(site.CurrentKeyOf("docs")) {
		t.Fatal("an edge applied the docs' pointer written by the blog's key")
	}
}
