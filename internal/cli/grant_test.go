package cli

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dt-cdn/dt/dt"
)

// publisherKeys makes a publisher's keys directory for the network in masterDir: a publisher key
// pair from dt keygen --publisher, and the network's network.key and master.pub beside it.
func publisherKeys(t *testing.T, masterDir string) (dir, pub string) {
	t.Helper()
	dir = filepath.Join(t.TempDir(), "pub")
	r := run(t, "", "keygen", "--publisher", dir)
	if r.code != 0 || len(strings.Fields(r.stdout)) != 2 {
		t.Fatalf("keygen --publisher: exit %d, %q, %s", r.code, r.stdout, r.stderr)
	}
	for _, name := range []string{dt.NetworkKeyFile, dt.MasterPubKeyFile} {
		b, err := os.ReadFile(filepath.Join(masterDir, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	raw, err := os.ReadFile(filepath.Join(dir, dt.PublisherPubKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	return dir, strings.TrimSpace(string(raw))
}

func TestGrantGrantsRevoke(t *testing.T) {
	keys := keygen(t)
	peer := startPeer(t, keys)
	pdir, pub := publisherKeys(t, keys)

	r := run(t, "", "grant", "--keys", keys, "--peer", peer.addr, "--site", "blog", pub)
	if r.code != 0 || !strings.Contains(r.stdout, "site/blog/=put,delete") {
		t.Fatalf("grant: exit %d, %q, %s", r.code, r.stdout, r.stderr)
	}
	r = run(t, "", "grants", "--keys", keys, "--peer", peer.addr, "--json")
	var list []grantJSON
	if err := json.Unmarshal([]byte(r.stdout), &list); r.code != 0 || err != nil || len(list) != 1 || list[0].Key != pub || list[0].NotAfter != 0 {
		t.Fatalf("grants --json: exit %d, %q (%v), %s", r.code, r.stdout, err, r.stderr)
	}
	want := map[string]string{"blob/": "put", "deploy/": "put", "site/blog/": "put,delete"}
	for _, rule := range list[0].Scope {
		if want[rule.Prefix] != rule.Ops {
			t.Errorf("rule %s=%s", rule.Prefix, rule.Ops)
		}
		delete(want, rule.Prefix)
	}
	if len(want) != 0 {
		t.Errorf("rules missing: %v", want)
	}

	// The publisher's key is refused, with the rule, what its grant does not cover.
	pkeys, err := dt.LoadKeys(pdir)
	if err != nil || pkeys.Publisher == nil || pkeys.Master != nil {
		t.Fatalf("publisher keys: %+v, %v", pkeys, err)
	}
	waitFor(t, 20*time.Second, func() error {
		if len(peer.Grants()) != 1 {
			return errors.New("peer has not applied the grant")
		}
		return nil
	})
	r = run(t, "{}", "add", "--keys", pdir, "--peer", peer.addr, "--timeout", "20s", "-")
	if r.code == 0 || !strings.Contains(r.stderr, "under no granted prefix") {
		t.Fatalf("add by a publisher (an object id is outside its site): exit %d, %q", r.code, r.stderr)
	}

	r = run(t, "", "revoke", "--keys", keys, "--peer", peer.addr, pub)
	if r.code != 0 || !strings.Contains(r.stdout, "revoked at") {
		t.Fatalf("revoke: exit %d, %q, %s", r.code, r.stdout, r.stderr)
	}
	waitFor(t, 20*time.Second, func() error {
		if g := peer.Grants(); len(g) != 1 || g[0].NotAfter == 0 {
			return errors.New("peer has not applied the revocation")
		}
		return nil
	})
	r = run(t, "", "grants", "--keys", keys, "--peer", peer.addr)
	if r.code != 0 || !strings.Contains(r.stdout, pub+"  revoked at") {
		t.Fatalf("grants: exit %d, %q, %s", r.code, r.stdout, r.stderr)
	}
}

func TestGrantRefusesBadInput(t *testing.T) {
	keys := keygen(t)
	pdir, pub := publisherKeys(t, keys)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"grant", "--keys", keys, "--peer", "127.0.0.1:1", "--site", "Blog", pub}, "--site"},
		{[]string{"grant", "--keys", keys, "--peer", "127.0.0.1:1", "--site", "a--b", pub}, "--site"},
		{[]string{"grant", "--keys", keys, "--peer", "127.0.0.1:1", "--site", "blog", "abcd"}, "hex digits"},
		{[]string{"grant", "--keys", pdir, "--peer", "127.0.0.1:1", "--site", "blog", pub}, "master.key"},
		{[]string{"revoke", "--keys", pdir, "--peer", "127.0.0.1:1", pub}, "master.key"},
	} {
		r := run(t, "", tc.args...)
		if r.code == 0 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q, want it to name %q", tc.args, r.code, r.stderr, tc.want)
		}
	}
}
