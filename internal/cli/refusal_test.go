package cli

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dt-cdn/dt/dt"
)

// TestPublishRefusedByPeer publishes to the site docs with a publisher key granted the blog:
// once from a keys directory that trusts the key as a master (a publisher that skips its own
// check), so the peer refuses the write and says why; once as the honest publisher, refused by
// its own check. Both exit non-zero with the reason and the grant to ask the master for.
func TestPublishRefusedByPeer(t *testing.T) {
	keys := keygen(t)
	peer := startPeer(t, keys)
	common := []string{"--keys", keys, "--peer", peer.addr, "--timeout", "20s"}
	for _, name := range []string{"blog", "docs"} {
		if r := run(t, "", append([]string{"site", "add", name, "--host", name + ".example.com"}, common...)...); r.code != 0 {
			t.Fatalf("site add %s: exit %d, %s", name, r.code, r.stderr)
		}
	}
	pdir, pub := publisherKeys(t, keys)
	if r := run(t, "", append([]string{"grant", "--site", "blog", pub}, common...)...); r.code != 0 {
		t.Fatalf("grant: exit %d, %s", r.code, r.stderr)
	}
	waitFor(t, 20*time.Second, func() error {
		if len(peer.Grants()) != 1 {
			return errors.New("peer has not applied the grant")
		}
		return nil
	})
	hostile := selfTrusting(t, keys, pdir, pub)
	site := t.TempDir()
	if err := os.WriteFile(filepath.Join(site, "index.html"), []byte("<h1>not the blog's</h1>"), 0o644); err != nil {
		t.Fatal(err)
	}
	next := "ask the master to run: dt grant --site docs " + pub
	r := run(t, "", "publish", "--keys", hostile, "--peer", peer.addr, "--timeout", "20s", "--site", "docs", site)
	if r.code != 1 || !strings.Contains(r.stderr, "refused by peer") ||
		!strings.Contains(r.stderr, "is outside the grant of publisher "+pub[:16]) || !strings.Contains(r.stderr, next) {
		t.Fatalf("publish refused by the peer: exit %d, stderr %q", r.code, r.stderr)
	}
	t.Logf("refused by the peer:\n%s", r.stderr)
	if peer.Has("site/docs/current") {
		t.Fatal("the peer applied the docs' pointer written by the blog's key")
	}
	r = run(t, "", "publish", "--keys", pdir, "--peer", peer.addr, "--timeout", "20s", "--site", "docs", site)
	if r.code != 1 || !strings.Contains(r.stderr, "under no granted prefix") || !strings.Contains(r.stderr, next) {
		t.Fatalf("publish refused by its own check: exit %d, stderr %q", r.code, r.stderr)
	}
}

// selfTrusting writes a keys directory whose master.key is the publisher's key and whose
// master.pub lists it beside the network's masters.
func selfTrusting(t *testing.T, keys, pdir, pub string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "self")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	read := func(d, name string) []byte {
		b, err := os.ReadFile(filepath.Join(d, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	files := map[string][]byte{
		dt.NetworkKeyFile:   read(keys, dt.NetworkKeyFile),
		dt.MasterKeyFile:    read(pdir, dt.PublisherKeyFile),
		dt.MasterPubKeyFile: []byte(strings.TrimSpace(string(read(keys, dt.MasterPubKeyFile))) + "\n" + pub + "\n"),
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}
