package publish

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dt-cdn/dt/blobs"
	"github.com/dt-cdn/dt/dt"
	"github.com/dt-cdn/dt/internal/testkit/wait"
	"github.com/dt-cdn/dt/site"
)

// publishTo publishes dir to the site name and checks that it waited for every test edge to
// serve it, by their per-site reports.
func publishTo(t *testing.T, ctx context.Context, name, dir string, opts NetworkOptions) Result {
	t.Helper()
	publishes++
	opts.Site = name
	plan, err := Scan(ctx, dir, ScanOptions{Created: time.Unix(1_700_000_000+int64(publishes), 0)})
	if err != nil {
		t.Fatal(err)
	}
	defer plan.Close()
	res, err := Publish(ctx, plan, opts)
	if err != nil || res.EdgesLive == 0 || res.EdgesLive != len(res.Edges) {
		t.Fatalf("publish to %s: live on %d of %+v, %v", name, res.EdgesLive, res.Edges, err)
	}
	if res.Site != name {
		t.Fatalf("published to site %q, want %q", res.Site, name)
	}
	return res
}

// body returns the object under key on n, or nil when n has none.
func body(t *testing.T, ctx context.Context, n *dt.Node, key string) []byte {
	t.Helper()
	if !n.Has(key) {
		return nil
	}
	b, err := n.Get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestTwoSites publishes two sites on one network: a file both have is one blob, sent once;
// rolling back and removing one site leaves the other's pointer (byte for byte) and blobs as
// they were; collection is per site, and a blob goes only when no kept deploy of any site
// names it.
func TestTwoSites(t *testing.T) {
	keys, addr, edges := testNetwork(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	opts := NetworkOptions{Keys: keys, Peers: []string{addr}, HeartbeatInterval: testBeat, Wait: 20 * time.Second, Keep: 2, Node: dt.LocalConfig()}
	n := edges[0].node // a replica, to check what the network holds
	for _, name := range []string{"blog", "docs"} {
		if _, err := AddSite(ctx, name, []string{name + ".example.com"}, opts); err != nil {
			t.Fatal(err)
		}
	}
	// Random bytes: not precompressed, so the file's own blob is the one in the table.
	sharedBytes := make([]byte, 4096)
	rand.Read(sharedBytes)
	shared := string(sharedBytes)
	blogDir, docsDir := t.TempDir(), t.TempDir()
	writeSite(t, blogDir, map[string]string{"index.html": "<h1>blog 1</h1>", "shared.bin": shared})
	writeSite(t, docsDir, map[string]string{"index.html": "<h1>docs</h1>", "shared.bin": shared})

	plan, err := Scan(ctx, blogDir, ScanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	plan.Close()
	if _, err := Publish(ctx, plan, opts); !errors.Is(err, ErrSiteRequired) || !strings.Contains(err.Error(), "blog, docs") {
		t.Fatalf("a publish naming no site on a network of two: %v", err)
	}
	opts.Site = "nope"
	if _, err := Publish(ctx, plan, opts); !errors.Is(err, ErrNoSite) {
		t.Fatalf("a publish to a site that does not exist: %v", err)
	}
	opts.Site = ""

	blog1 := publishTo(t, ctx, "blog", blogDir, opts)
	docs := publishTo(t, ctx, "docs", docsDir, opts)
	sharedHash := blobs.Sum([]byte(shared))
	if !slices.Contains(blog1.Diff.Send, sharedHash) || slices.Contains(docs.Diff.Send, sharedHash) {
		t.Fatalf("the shared file was not sent exactly once: blog sent it %v, docs sent it %v",
			slices.Contains(blog1.Diff.Send, sharedHash), slices.Contains(docs.Diff.Send, sharedHash))
	}
	wait.For(t, 10*time.Second, func() error {
		for _, k := range []string{site.CurrentKeyOf("blog"), site.CurrentKeyOf("docs"), site.BlobKey(sharedHash), site.HistoryKey("docs")} {
			if !n.Has(k) {
				return fmt.Errorf("the network lacks %s", k)
			}
		}
		return nil
	})
	if n.Has(site.CurrentKey) {
		t.Fatal("a publish to named sites wrote the default site's pointer")
	}
	docsPointer := body(t, ctx, n, site.CurrentKeyOf("docs"))

	// Three deploys of blog with Keep 2: blog's first goes, and the blob only it used, but not
	// the shared one, which docs keeps.
	writeSite(t, blogDir, map[string]string{"index.html": "<h1>blog 2</h1>"})
	blog2 := publishTo(t, ctx, "blog", blogDir, opts)
	writeSite(t, blogDir, map[string]string{"index.html": "<h1>blog 3</h1>", "shared.bin": "changed"})
	blog3 := publishTo(t, ctx, "blog", blogDir, opts)
	if !slices.Equal(blog3.Collected, []site.DeployID{blog1.Deploy}) {
		t.Fatalf("collected %v, want blog's first deploy only", blog3.Collected)
	}
	blog1Index := blobs.Sum([]byte("<h1>blog 1</h1>"))
	if !slices.Contains(blog1.Diff.Send, blog1Index) || !slices.Contains(blog3.Diff.Send, blobs.Sum([]byte("changed"))) ||
		!slices.Contains(docs.Diff.Send, blobs.Sum([]byte("<h1>docs</h1>"))) {
		t.Fatal("a small file's own blob was not sent: the checks below would check nothing")
	}
	wait.For(t, 10*time.Second, func() error {
		if n.Has(site.BlobKey(blog1Index)) || n.Has(site.DeployKey(blog1.Deploy)) {
			return errors.New("blog's first deploy is still in the table")
		}
		return nil
	})
	if !n.Has(site.BlobKey(sharedHash)) || !n.Has(site.DeployKey(docs.Deploy)) {
		t.Fatal("collecting blog took docs's deploy or a blob it uses")
	}

	// Rollback of blog: to blog's previous deploy, never to docs's.
	opts.Site = "blog"
	rb, err := Rollback(ctx, site.DeployID{}, opts)
	if err != nil || rb.EdgesLive != 1 {
		t.Fatalf("blog's rollback: live on %d edges, %v", rb.EdgesLive, err)
	}
	if rb.Deploy != blog2.Deploy {
		t.Fatalf("blog rolled back to %s, want %s", rb.Deploy.Short(), blog2.Deploy.Short())
	}
	if _, err := Rollback(ctx, docs.Deploy, opts); err == nil || !strings.Contains(err.Error(), "site blog") {
		t.Fatalf("rolling blog back to docs's deploy: %v", err)
	}
	list, err := Deploys(ctx, opts)
	if err != nil || len(list) != 2 || list[0].ID != blog3.Deploy || !list[1].Current {
		t.Fatalf("blog's deploys: %+v, %v", list, err)
	}
	// The edge serves blog's current deploy, and says nothing of the others.
	if len(list[1].LiveOn) != 1 || len(list[0].LiveOn) != 0 {
		t.Errorf("blog's deploys live on %v and %v", list[0].LiveOn, list[1].LiveOn)
	}
	opts.Site = ""

	// Removing blog: its record, pointer, History, deploys and the blobs only it used go.
	collected, err := RemoveSite(ctx, "blog", opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(collected) != 2 {
		t.Fatalf("removing blog collected %v, want its 2 deploys", collected)
	}
	wait.For(t, 10*time.Second, func() error {
		for _, k := range []string{site.RecordKey("blog"), site.CurrentKeyOf("blog"), site.HistoryKey("blog"),
			site.DeployKey(blog3.Deploy), site.BlobKey(blobs.Sum([]byte("changed")))} {
			if n.Has(k) {
				return fmt.Errorf("the network still holds %s", k)
			}
		}
		return nil
	})
	if got := body(t, ctx, n, site.CurrentKeyOf("docs")); !bytes.Equal(got, docsPointer) {
		t.Fatalf("docs's pointer changed: %s, was %s", got, docsPointer)
	}
	for _, k := range []string{site.DeployKey(docs.Deploy), site.BlobKey(sharedHash), site.BlobKey(blobs.Sum([]byte("<h1>docs</h1>")))} {
		if !n.Has(k) {
			t.Fatalf("removing blog took %s, which docs uses", k)
		}
	}
	// One site left: --site may be left out again.
	if got := publishTo(t, ctx, "docs", docsDir, NetworkOptions{Keys: keys, Peers: []string{addr}, HeartbeatInterval: testBeat, Wait: time.Second, Node: dt.LocalConfig()}); !got.Unchanged {
		t.Fatalf("republishing docs unchanged: %+v", got)
	}
}

// TestImplicitDefaultSite: a network published to as the previous release does (site/current
// only) is the site default: it is published to with no --site, writes only the keys the
// previous release writes (its edges, which follow site/current, switch), and goes on doing so
// once another site joins, with --site default.
func TestImplicitDefaultSite(t *testing.T) {
	keys, addr, edges := testNetwork(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	opts := NetworkOptions{Keys: keys, Peers: []string{addr}, HeartbeatInterval: testBeat, Wait: 20 * time.Second, Keep: 2, Node: dt.LocalConfig()}
	n := edges[0].node
	dir := t.TempDir()
	writeSite(t, dir, map[string]string{"index.html": "<h1>one</h1>"})
	first := publishDir(t, ctx, dir, opts)
	if first.Site != site.DefaultSite || first.EdgesLive != 1 {
		t.Fatalf("first publish: site %q, live on %d", first.Site, first.EdgesLive)
	}
	// Only the previous release's keys, and its pointer's form.
	checkLegacyKeys := func() {
		t.Helper()
		for key := range n.ObjectKeys() {
			_, isBlob := site.ParseBlobKey(key)
			_, isDeploy := site.ParseDeployKey(key)
			_, isRecord := site.ParseRecordKey(key)
			_, isHistory := site.ParseHistoryKey(key)
			named, isPointer := site.ParseCurrentKey(key)
			if !isBlob && !isDeploy && key != site.CurrentKey && !isRecord && !isHistory && !(isPointer && named != site.DefaultSite) {
				t.Fatalf("the table holds %s", key)
			}
			if isHistory && strings.Contains(key, site.DefaultSite) {
				t.Fatalf("the default site has a History: %s", key)
			}
		}
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(body(t, ctx, n, site.CurrentKey), &fields); err != nil || len(fields) != 2 || fields["deploy"] == nil || fields["time"] == nil {
			t.Fatalf("site/current is not in the previous release's form: %v %v", fields, err)
		}
	}
	checkLegacyKeys()

	if _, err := AddSite(ctx, "blog", []string{"blog.example.com"}, opts); err != nil {
		t.Fatal(err)
	}
	blogDir := t.TempDir()
	writeSite(t, blogDir, map[string]string{"index.html": "<h1>blog</h1>"})
	publishTo(t, ctx, "blog", blogDir, opts)

	writeSite(t, dir, map[string]string{"index.html": "<h1>two</h1>"})
	plan, err := Scan(ctx, dir, ScanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	plan.Close()
	if _, err := Publish(ctx, plan, opts); !errors.Is(err, ErrSiteRequired) || !strings.Contains(err.Error(), "blog, default") {
		t.Fatalf("a publish naming no site on a network of two: %v", err)
	}
	second := publishTo(t, ctx, site.DefaultSite, dir, opts)
	if second.EdgesLive != 1 || second.Previous != first.Deploy {
		t.Fatalf("second publish to default: live on %d, previous %s", second.EdgesLive, second.Previous.Short())
	}
	if a, ok := edges[0].follower.Active(); !ok || a.ID != second.Deploy {
		t.Fatal("the edge, which follows site/current as the previous release does, did not switch")
	}
	checkLegacyKeys()
	opts.Site = site.DefaultSite
	list, err := Deploys(ctx, opts)
	if err != nil || len(list) != 2 || list[0].ID != second.Deploy || list[1].ID != first.Deploy {
		t.Fatalf("the default site's deploys: %+v, %v", list, err)
	}

	// Removing the default site collects its deploys, and only them.
	blogPointer := body(t, ctx, n, site.CurrentKeyOf("blog"))
	collected, err := RemoveSite(ctx, site.DefaultSite, opts)
	if err != nil || len(collected) != 2 {
		t.Fatalf("removing default collected %v, %v; want its 2 deploys", collected, err)
	}
	wait.For(t, 10*time.Second, func() error {
		if n.Has(site.CurrentKey) || n.Has(site.DeployKey(second.Deploy)) {
			return errors.New("the default site's pointer or deploy is still in the table")
		}
		return nil
	})
	if got := body(t, ctx, n, site.CurrentKeyOf("blog")); !bytes.Equal(got, blogPointer) {
		t.Fatalf("removing default changed blog's pointer: %s, was %s", got, blogPointer)
	}
	opts.Site = ""
	if list, err := Deploys(ctx, opts); err != nil || len(list) != 1 {
		t.Fatalf("blog, now the only site, keeps %+v, %v", list, err)
	}
}
