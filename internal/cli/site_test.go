package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dt-cdn/dt/publish"
	"github.com/dt-cdn/dt/site"
)

// TestSiteCommands drives dt site add, set and remove and dt sites against a node whose one site
// was published as before sites existed: it is listed as the implicit default, a host taken by
// another site is refused with its site named, and removal frees the host.
func TestSiteCommands(t *testing.T) {
	keys := keygen(t)
	peer := startPeer(t, keys)
	common := []string{"--keys", keys, "--peer", peer.addr, "--timeout", "5s"}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte("<h1>default</h1>"), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := run(t, "", append(append([]string{"publish", "--timeout", "1s"}, common[:4]...), dir)...); r.code != exitNoEdges {
		t.Fatalf("publish: exit %d: %s", r.code, r.stderr)
	}

	r := run(t, "", append([]string{"site", "add", "blog", "--host", "blog.example.com", "--host", "*.blog.example.com"}, common...)...)
	if r.code != 0 || r.stdout != "site blog: *.blog.example.com blog.example.com\n" {
		t.Fatalf("site add: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if !peer.Has(site.RecordKey("blog")) {
		t.Fatal("the record of blog is not in the table")
	}
	r = run(t, "", append([]string{"site", "add", "docs", "--host", "blog.example.com"}, common...)...)
	if r.code != 1 || !strings.Contains(r.stderr, "blog.example.com (site blog)") {
		t.Fatalf("a taken host: exit %d\n%s", r.code, r.stderr)
	}
	r = run(t, "", append([]string{"site", "add", "blog"}, common...)...)
	if r.code != 1 || !strings.Contains(r.stderr, "site exists") {
		t.Fatalf("adding blog twice: exit %d\n%s", r.code, r.stderr)
	}
	if r := run(t, "", append([]string{"site", "add", "Not_A_Label"}, common...)...); r.code != 2 {
		t.Fatalf("an invalid name: exit %d\n%s", r.code, r.stderr)
	}
	if r := run(t, "", append([]string{"site", "set", "blog", "--host", "www.blog.example.com"}, common...)...); r.code != 0 {
		t.Fatalf("site set: exit %d\n%s", r.code, r.stderr)
	}

	r = run(t, "", append([]string{"sites", "--json"}, common...)...)
	var list []publish.SiteInfo
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil || r.code != 0 {
		t.Fatalf("sites --json: exit %d, %v\n%s%s", r.code, err, r.stdout, r.stderr)
	}
	if len(list) != 2 || list[0].Name != "blog" || list[0].Hosts[0] != "www.blog.example.com" || list[0].Current != nil ||
		list[1].Name != site.DefaultSite || !list[1].Implicit || list[1].Current == nil {
		t.Fatalf("sites: %+v", list)
	}
	r = run(t, "", append([]string{"sites"}, common...)...)
	if r.code != 0 || !strings.Contains(r.stdout, "default  "+list[1].Current.Short()+"  (every host no other site claims)") {
		t.Fatalf("sites: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	// Two sites now: dt publish, deploys and rollback need --site.
	if r := run(t, "", append(append([]string{"publish"}, common...), dir)...); r.code != 1 || !strings.Contains(r.stderr, "blog, default") {
		t.Fatalf("publish without --site on a network of two: exit %d\n%s", r.code, r.stderr)
	}
	if r := run(t, "", append([]string{"deploys"}, common...)...); r.code != 1 || !strings.Contains(r.stderr, "name one") {
		t.Fatalf("deploys without --site on a network of two: exit %d\n%s", r.code, r.stderr)
	}
	blogDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(blogDir, "index.html"), []byte("<h1>blog</h1>"), 0o644); err != nil {
		t.Fatal(err)
	}
	r = run(t, "", append(append([]string{"publish", "--site", "blog", "--json"}, common...), blogDir)...)
	var res publish.Result
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || r.code != exitNoEdges || res.Site != "blog" {
		t.Fatalf("publish --site blog: exit %d, %v\n%s%s", r.code, err, r.stdout, r.stderr)
	}
	if !peer.Has(site.CurrentKeyOf("blog")) {
		t.Fatal("the pointer of blog is not in the table")
	}
	r = run(t, "", append([]string{"deploys", "--site", "blog"}, common...)...)
	if r.code != 0 || strings.Count(r.stdout, "\n") != 1 || !strings.HasPrefix(r.stdout, "* "+res.Deploy.Short()) {
		t.Fatalf("deploys --site blog: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := run(t, "", append([]string{"rollback", "--site", "blog"}, common...)...); r.code != 1 || !strings.Contains(r.stderr, "no earlier deploy") {
		t.Fatalf("rollback --site blog with one deploy: exit %d\n%s", r.code, r.stderr)
	}

	if r := run(t, "", append([]string{"site", "remove", "blog"}, common...)...); r.code != 0 || !strings.Contains(r.stdout, "site blog removed") {
		t.Fatalf("site remove: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := run(t, "", append([]string{"site", "remove", "blog"}, common...)...); r.code != 1 || !strings.Contains(r.stderr, "no such site") {
		t.Fatalf("removing blog twice: exit %d\n%s", r.code, r.stderr)
	}
	if r := run(t, "", append([]string{"site", "add", "docs", "--host", "www.blog.example.com"}, common...)...); r.code != 0 {
		t.Fatalf("a host freed by removal: exit %d\n%s", r.code, r.stderr)
	}
	if r := run(t, "", append([]string{"site"}, common...)...); r.code != 2 {
		t.Fatalf("dt site alone: exit %d", r.code)
	}
}

// TestSiteSettingFlags checks that dt site add and set refuse a --keep outside 1 to
// site.MaxKeep as a usage error, before any peer is dialed.
func TestSiteSettingFlags(t *testing.T) {
	keys := keygen(t)
	for _, args := range [][]string{
		{"site", "add", "app", "--keep", "0"},
		{"site", "set", "app", "--keep", "1001"},
		{"site", "set", "app", "--keep", "-1"},
	} {
		// The peer is a closed port: a command that dialed it would fail with 1, not 2.
		r := run(t, "", append(args, "--keys", keys, "--peer", "127.0.0.1:1", "--timeout", "5s")...)
		if r.code != 2 || !strings.Contains(r.stderr, "--keep") {
			t.Errorf("%v: exit %d, want 2\n%s", args, r.code, r.stderr)
		}
	}
}
