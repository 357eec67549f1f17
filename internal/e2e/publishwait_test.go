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
	"github.com/dt-cdn/dt/internal/cli"
	"github.com/dt-cdn/dt/internal/testkit/testnet"
	"github.com/dt-cdn/dt/publish"
	"github.com/dt-cdn/dt/site"
)

// cliResult is what one dt command printed and its exit status.
type cliResult struct {
	code           int
	stdout, stderr string
}

// runDT runs one dt command in process, bounded by a minute.
func runDT(t *testing.T, args ...string) cliResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out, errOut strings.Builder
	code := cli.Run(ctx, args, &cli.Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errOut})
	return cliResult{code: code, stdout: out.String(), stderr: errOut.String()}
}

// sendHeartbeats sends heartbeats from a node of its own linked to peer until the end of the
// test, each filled by fill: an edge that reports what fill says, whatever it holds.
func sendHeartbeats(t *testing.T, keys dt.Keys, peer string, beat time.Duration, fill func(*heartbeat.Heartbeat)) {
	n := testnet.Node(t, testnet.Options{Keys: keys, Peers: []string{peer}})
	testnet.Drain(n)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); heartbeat.Send(ctx, n, beat, fill, nil) }()
	t.Cleanup(func() { cancel(); <-done })
}

// TestPublishWaitsForSite runs dt-publish --site blog and dt rollback --site blog against a
// network of in-process edges, on a network whose other site (default) exists too. With only an
// edge of a release before sites (which serves the default site alone) the publish exits 4; with
// two edges it exits 0 once both serve the blog's new deploy, which each then serves on the
// blog's host; a rollback exits 0 the same way; with a third edge that stays behind on the blog
// the publish exits 3, naming the edges that serve it, and dt sites shows where the blog is live.
func TestPublishWaitsForSite(t *testing.T) {
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
	common := []string{"--keys", keysDir, "--peer", n.peer, "--cache-dir="}
	dir := func(body string) string {
		d := t.TempDir()
		if err := os.WriteFile(filepath.Join(d, "index.html"), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return d
	}
	publishBlog := func(timeout, body string) cliResult {
		return runDT(t, append(append([]string{"publish"}, common...), "--site", "blog", "--timeout", timeout, dir(body))...)
	}

	// The default site exists, as on a network of an earlier release, and a blog beside it.
	if r := runDT(t, append(append([]string{"publish"}, common...), "--timeout", "3s", dir("<h1>main</h1>"))...); r.code != 4 {
		t.Fatalf("the default site's first publish, no edge yet: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := runDT(t, append(append([]string{"site", "add"}, common...), "blog", "--host", "blog.example.com")...); r.code != 0 {
		t.Fatalf("dt site add: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	// An edge of a release before sites reports the default site's deploy and nothing else.
	sendHeartbeats(t, plain, n.peer, beat, func(h *heartbeat.Heartbeat) { h.PublicURL, h.Synced = "http://old.example", true })
	if r := publishBlog("5s", "<h1>blog v1</h1>"); r.code != 4 || !strings.Contains(r.stdout, "live on 0/0 edges") {
		t.Fatalf("publish to blog with only an edge of the previous release: exit %d, want 4\n%s%s", r.code, r.stdout, r.stderr)
	}

	edges := []*runningEdge{n.startEdge(amsterdam), n.startEdge(newYork)}
	r := publishBlog("30s", "<h1>blog v2</h1>")
	if r.code != 0 || !strings.Contains(r.stdout, "live on 2/2 edges") {
		t.Fatalf("publish to blog with two edges: exit %d, want 0\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, e := range edges {
		if got := getHost(t, e.url+"/", "blog.example.com"); got.body != "<h1>blog v2</h1>" {
			t.Errorf("edge %s said it serves blog v2 and answers %+v", e.url, got)
		}
	}
	if r := runDT(t, append(append([]string{"rollback"}, common...), "--site", "blog", "--timeout", "30s")...); r.code != 0 || !strings.Contains(r.stdout, "live on 2/2 edges") {
		t.Fatalf("rollback of blog: exit %d, want 0\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, e := range edges {
		if got := getHost(t, e.url+"/", "blog.example.com"); got.body != "<h1>blog v1</h1>" {
			t.Errorf("edge %s said it serves blog v1 again and answers %+v", e.url, got)
		}
	}

	// A third edge stays behind on the blog (its heartbeats list it as lagging), whatever is
	// published.
	behind := site.DeployIDOf([]byte("an old blog")).String()
	sendHeartbeats(t, plain, n.peer, beat, func(h *heartbeat.Heartbeat) {
		h.PublicURL = "http://behind.example"
		h.SetSites([]heartbeat.SiteState{{Site: "blog", Served: behind, Current: site.DeployIDOf([]byte("a newer blog")).String()}})
	})
	r = publishBlog("5s", "<h1>blog v3</h1>")
	if r.code != 3 || !strings.Contains(r.stdout, "live on 2/3 edges") || !strings.Contains(r.stdout, "http://behind.example  not yet (serves "+behind[:12]+")") {
		t.Fatalf("publish to blog with an edge behind: exit %d, want 3\n%s%s", r.code, r.stdout, r.stderr)
	}

	// dt sites: the blog is live on the two edges and lags on the third; the edge of the
	// release before sites does not count for it.
	r = runDT(t, append(append([]string{"sites", "--json"}, common...), "--timeout", "30s")...)
	var sites []publish.SiteInfo
	if err := json.Unmarshal([]byte(r.stdout), &sites); err != nil || r.code != 0 {
		t.Fatalf("dt sites --json: exit %d, %v\n%s%s", r.code, err, r.stdout, r.stderr)
	}
	var names []string // the edges have no name of their own: their URLs stand for them
	for _, e := range edges {
		names = append(names, e.url)
	}
	slices.Sort(names)
	if len(sites) != 2 || sites[0].Name != "blog" || !slices.Equal(sites[0].LiveOn, names) || sites[0].Lagging != 1 {
		t.Errorf("dt sites: blog %+v, want live on %v and 1 edge lagging", sites[0], names)
	}
	r = runDT(t, append([]string{"sites"}, common...)...)
	if r.code != 0 || !strings.Contains(r.stdout, "LIVE ON") || !strings.Contains(r.stdout, strings.Join(names, " ")+"  1\n") {
		t.Errorf("dt sites: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}
