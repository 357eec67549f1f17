package cli

import (
	"errors"
	"fmt"
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

// TestRefusalOfMasterOnlyKeys: a refused write to the site list, the grants, a DNS zone or the
// network's settings, whether a peer refused it or the node's own check did, is explained as a
// master's alone with the command that writes it, never with a grant to ask for; a refused
// write under a site's own keys still names the grant.
func TestRefusalOfMasterOnlyKeys(t *testing.T) {
	keys := keygen(t)
	_, pub := publisherKeys(t, keys)
	pdir, _ := publisherKeys(t, keys)
	pkeys, err := dt.LoadKeys(pdir)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		err  error
		want []string
	}{
		{&dt.VerdictError{Key: "sites/docs", Verdict: dt.VerdictRefused, Reason: "outside"},
			[]string{"sites/docs is in the site list, which only a master key", "run: dt site add docs --host HOST"}},
		{fmt.Errorf("dt: put grants/%s: %w: grants/ is written by masters only", pub, dt.ErrOutsideGrant),
			[]string{"grants/" + pub + " is in the grants", "run: dt grant --site SITE PUBKEY"}},
		{fmt.Errorf("publish: zone: %w", &dt.VerdictError{Key: "dns/example.com", Verdict: dt.VerdictPending}),
			[]string{"waiting for a grant: dns/example.com is in the DNS zones", "run: dt dns-publish ZONEFILE"}},
		{&dt.VerdictError{Key: "network/settings", Verdict: dt.VerdictRefused},
			[]string{"network/settings is in the network's settings", "run: dt network set --cdn-zone ZONE"}},
	} {
		got := explainRefusal(c.err, pkeys, "blog").Error()
		for _, w := range append(c.want, "no grant covers it") {
			if !strings.Contains(got, w) {
				t.Errorf("explanation of %v lacks %q:\n%s", c.err, w, got)
			}
		}
		if strings.Contains(got, "dt grant --site blog") {
			t.Errorf("explanation of %v asks for a grant:\n%s", c.err, got)
		}
		if m := explainMasterOnly(c.err).Error(); !strings.Contains(m, c.want[0]) {
			t.Errorf("explainMasterOnly(%v) = %s", c.err, m)
		}
	}
	own := &dt.VerdictError{Key: "site/docs/current", Verdict: dt.VerdictRefused}
	if got := explainRefusal(own, pkeys, "docs").Error(); !strings.Contains(got, "ask the master to run: dt grant --site docs") || strings.Contains(got, "only a master key") {
		t.Errorf("a site's own pointer: %s", got)
	}
	if got := explainMasterOnly(own); got != error(own) {
		t.Errorf("explainMasterOnly changed a site's own key: %v", got)
	}
}

// TestSiteAddRefusedByPeer runs dt site add with a publisher key that trusts itself as a
// master: the peer refuses it, and the error says that only a master key may write the site
// list, and what to run on a master.
func TestSiteAddRefusedByPeer(t *testing.T) {
	keys := keygen(t)
	peer := startPeer(t, keys)
	pdir, pub := publisherKeys(t, keys)
	if r := run(t, "", "grant", "--keys", keys, "--peer", peer.addr, "--timeout", "20s", "--site", "blog", pub); r.code != 0 {
		t.Fatalf("grant: exit %d, %s", r.code, r.stderr)
	}
	hostile := selfTrusting(t, keys, pdir, pub)
	common := []string{"--keys", hostile, "--peer", peer.addr, "--timeout", "20s"}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"site", "add", "evil", "--host", "evil.example.com"}, "sites/evil is in the site list, which only a master key"},
	} {
		r := run(t, "", append(c.args, common...)...)
		if r.code != 1 || !strings.Contains(r.stderr, c.want) || strings.Contains(r.stderr, "ask the master to run: dt grant") {
			t.Errorf("%v: exit %d\n%s", c.args, r.code, r.stderr)
		}
		t.Logf("%v:\n%s", c.args, r.stderr)
	}
	if peer.Has("sites/evil") {
		t.Error("the peer applied a site record written by a publisher key")
	}
}
