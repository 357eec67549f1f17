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

// TestPublishCommands drives dt publish, deploys and rollback against a node with no edge: the
// deploy lands in the table (exit 4: no edge reported it), a dry run then finds nothing changed, and
// rollback goes back to the first deploy without uploading.
func TestPublishCommands(t *testing.T) {
	keys := keygen(t)
	peer := startPeer(t, keys)
	dir := t.TempDir()
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("index.html", "<h1>one</h1>")
	common := []string{"--keys", keys, "--peer", peer.addr, "--timeout", "1s"}

	r := run(t, "", append(append([]string{"publish", "--json"}, common...), dir)...)
	if r.code != exitNoEdges {
		t.Fatalf("publish exit %d, want %d: %s", r.code, exitNoEdges, r.stderr)
	}
	var first publish.Result
	if err := json.Unmarshal([]byte(r.stdout), &first); err != nil {
		t.Fatalf("--json output: %v\n%s", err, r.stdout)
	}
	if first.BlobsSent != 1 || first.Files != 1 {
		t.Fatalf("first publish: %+v", first)
	}
	if !peer.Has(site.DeployKey(first.Deploy)) || !peer.Has(site.CurrentKey) {
		t.Fatal("the deploy is not in the table")
	}

	r = run(t, "", append(append([]string{"publish", "--dry-run"}, common...), dir)...)
	if r.code != 0 || !strings.Contains(r.stdout, "nothing changed") {
		t.Fatalf("dry run: %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	write("index.html", "<h1>two</h1>")
	write("new.html", "new")
	r = run(t, "", append(append([]string{"publish"}, common...), dir)...)
	if r.code != exitNoEdges || !strings.Contains(r.stdout, "1 added, 1 changed, 0 deleted; sent 2 blobs") {
		t.Fatalf("second publish: %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	r = run(t, "", append([]string{"deploys"}, common...)...)
	if r.code != 0 || strings.Count(r.stdout, "\n") != 2 || !strings.HasPrefix(r.stdout, "*") ||
		strings.Count(r.stdout, "live on no edge\n") != 2 {
		t.Fatalf("deploys: %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	r = run(t, "", append([]string{"rollback", "--json"}, common...)...)
	var rb publish.Result
	if err := json.Unmarshal([]byte(r.stdout), &rb); err != nil || r.code != exitNoEdges {
		t.Fatalf("rollback: %d %v\n%s%s", r.code, err, r.stdout, r.stderr)
	}
	if rb.Deploy != first.Deploy || rb.BlobsSent != 0 {
		t.Fatalf("rollback went to %s, sent %d blobs", rb.Deploy.Short(), rb.BlobsSent)
	}

	// Bad input fails before anything is sent.
	write("_redirects", "/a /b 999\n")
	r = run(t, "", append(append([]string{"publish"}, common...), dir)...)
	if r.code != 1 || !strings.Contains(r.stderr, "_redirects:1") {
		t.Fatalf("invalid _redirects: %d %s", r.code, r.stderr)
	}
	if r := run(t, "", "publish", dir); r.code != 2 {
		t.Fatalf("publish without keys: exit %d", r.code)
	}
}
