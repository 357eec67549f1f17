package e2e

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dt-cdn/dt/dt"
	"github.com/dt-cdn/dt/heartbeat"
	"github.com/dt-cdn/dt/internal/testkit/testnet"
	"github.com/dt-cdn/dt/publish"
	"github.com/dt-cdn/dt/site"
)

// TestSiteSettings runs dt site add and dt site set with serving settings against a network of
// an in-process edge. While an edge of an earlier release (whose heartbeats do not say it reads
// settings) is heard, a record with settings is refused, naming that edge, unless forced; once
// it is gone, settings are written without --force. A site whose record says --spa and keep=1
// then serves /index.html for an unknown path after a publish without --spa, and its second
// publish collects its first deploy.
func TestSiteSettings(t *testing.T) {
	const beat = 100 * time.Millisecond
	keysDir := filepath.Join(t.TempDir(), "keys")
	if err := dt.GenerateKeys(keysDir, nil); err != nil {
		t.Fatal(err)
	}
	keys, err := dt.LoadKeys(keysDir)
	if err != nil {
		t.Fatal(err)
	}
	plain := keys
	plain.Master = nil
	n := &testNetwork{t: t, keys: keys, plain: plain, beat: beat}
	hub := n.open(true, nil, false)
	testnet.Drain(hub)
	n.peer = testnet.Addr(hub)
	common := []string{"--keys", keysDir, "--peer", n.peer, "--cache-dir=", "--timeout", "30s"}
	run := func(args ...string) cliResult { return runDT(t, append(args, common...)...) }
	e := n.startEdge(amsterdam)

	stopOld := startOldEdge(t, plain, n.peer, beat)
	r := run("site", "add", "app", "--host", "app.example", "--spa")
	if r.code != 1 || !strings.Contains(r.stderr, "old-1") || !strings.Contains(r.stderr, "--force") || strings.Contains(r.stderr, e.url) {
		t.Fatalf("settings with an edge of an earlier release live: exit %d, want 1 naming old-1 only\n%s%s", r.code, r.stdout, r.stderr)
	}
	if hub.Has(site.RecordKey("app")) {
		t.Fatal("a refused record reached the table")
	}
	if r := run("site", "add", "app", "--host", "app.example"); r.code != 0 {
		t.Fatalf("a site without settings, with an edge of an earlier release live: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := run("site", "set", "app", "--spa", "--force"); r.code != 0 || r.stdout != "site app: app.example\nsettings: spa\n" {
		t.Fatalf("site set --spa --force: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	stopOld()

	// Without --host, set keeps the hosts; each setting given replaces that setting alone.
	if r := run("site", "set", "app", "--keep", "1", "--clean-urls=false"); r.code != 0 || r.stdout != "site app: app.example\nsettings: no-clean-urls,spa,keep=1\n" {
		t.Fatalf("site set --keep 1 --clean-urls=false: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := run("site", "set", "app", "--keep", "0"); r.code != 2 {
		t.Fatalf("--keep 0: exit %d, want 2\n%s", r.code, r.stderr)
	}
	r = run("sites", "--json")
	var list []publish.SiteInfo
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil || r.code != 0 {
		t.Fatalf("dt sites --json: exit %d, %v\n%s%s", r.code, err, r.stdout, r.stderr)
	}
	if len(list) != 1 || !slices.Equal(list[0].Hosts, []string{"app.example"}) || list[0].Settings.String() != "no-clean-urls,spa,keep=1" {
		t.Fatalf("dt sites --json: %+v", list)
	}
	if r := run("sites"); r.code != 0 || !strings.Contains(r.stdout, "SETTINGS") || !strings.Contains(r.stdout, "no-clean-urls,spa,keep=1") {
		t.Fatalf("dt sites: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	first := publishApp(t, run, "<h1>app v1</h1>")
	if !first.SPA || first.CleanURLs {
		t.Fatalf("a publish without --spa to a site whose record says spa: %+v", first)
	}
	if got := getHost(t, e.url+"/some/route", "app.example"); got.status != 200 || got.body != "<h1>app v1</h1>" {
		t.Fatalf("an unknown path of an SPA site: %+v", got)
	}
	second := publishApp(t, run, "<h1>app v2</h1>")
	if !slices.Contains(second.Collected, first.Deploy) {
		t.Fatalf("keep=1: the second publish collected %v, not the first deploy %s", second.Collected, first.Deploy.Short())
	}
}

// publishApp publishes an index.html of body to the site app with dt publish, without --spa
// or --keep, and fails the test unless it is live.
func publishApp(t *testing.T, run func(...string) cliResult, body string) publish.Result {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	r := run("publish", "--site", "app", "--json", dir)
	var res publish.Result
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || r.code != 0 {
		t.Fatalf("dt publish --site app: exit %d, %v\n%s%s", r.code, err, r.stdout, r.stderr)
	}
	return res
}

// startOldEdge sends the heartbeats of an edge named old-1 of a release before site settings
// (no site_settings) from a node of its own linked to peer, until the returned function is
// called or the test ends.
func startOldEdge(t *testing.T, keys dt.Keys, peer string, beat time.Duration) (stop func()) {
	n := testnet.Node(t, testnet.Options{Keys: keys, Peers: []string{peer}})
	testnet.Drain(n)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		heartbeat.Send(ctx, n, beat, func(h *heartbeat.Heartbeat) {
			h.Name, h.PublicURL, h.Synced = "old-1", "http://old.example", true
		}, nil)
	}()
	stop = func() { cancel(); <-done }
	t.Cleanup(func() { cancel(); <-done })
	return stop
}
