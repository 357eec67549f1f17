package cli

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dt-cdn/dt/dt"
	"github.com/dt-cdn/dt/netconf"
	"github.com/dt-cdn/dt/site"
)

// TestNetworkCommands drives dt network set and show against a node: the zone is normalised,
// written, shown with the masters, sites and grants, cleared with ”, and refused when invalid
// or when given by a key that is not a master's.
func TestNetworkCommands(t *testing.T) {
	keys := keygen(t)
	peer := startPeer(t, keys)
	common := []string{"--keys", keys, "--peer", peer.addr, "--timeout", "20s"}

	r := run(t, "", append([]string{"network", "show", "--json"}, common...)...)
	var shown networkJSON
	if err := json.Unmarshal([]byte(r.stdout), &shown); r.code != 0 || err != nil || shown.CDNZone != "" || shown.Sites != 0 {
		t.Fatalf("show on a new network: exit %d, %v\n%s%s", r.code, err, r.stdout, r.stderr)
	}
	r = run(t, "", append([]string{"network", "set", "--cdn-zone", "CDN.Example.com."}, common...)...)
	if r.code != 0 || r.stdout != "cdn zone: cdn.example.com\n" {
		t.Fatalf("set: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	raw, err := peer.Get(t.Context(), netconf.Key)
	if s, perr := netconf.ParseSettings(raw); err != nil || perr != nil || s.CDNZone != "cdn.example.com" {
		t.Fatalf("the peer holds %s (%v, %v)", raw, err, perr)
	}
	if r := run(t, "", append([]string{"site", "add", "blog", "--host", "blog.example.com"}, common...)...); r.code != 0 {
		t.Fatalf("site add: exit %d\n%s", r.code, r.stderr)
	}
	_, pub := publisherKeys(t, keys)
	if r := run(t, "", append([]string{"grant", "--site", "blog", pub}, common...)...); r.code != 0 {
		t.Fatalf("grant: exit %d\n%s", r.code, r.stderr)
	}
	master, err := os.ReadFile(filepath.Join(keys, dt.MasterPubKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	r = run(t, "", append([]string{"network", "show", "--json"}, common...)...)
	shown = networkJSON{}
	if err := json.Unmarshal([]byte(r.stdout), &shown); r.code != 0 || err != nil {
		t.Fatalf("show --json: exit %d, %v\n%s%s", r.code, err, r.stdout, r.stderr)
	}
	if shown.CDNZone != "cdn.example.com" || shown.Sites != 1 || len(shown.Grants) != 1 || shown.Grants[0].Key != pub ||
		len(shown.Masters) != 1 || shown.Masters[0] != strings.TrimSpace(string(master)) {
		t.Fatalf("show --json: %+v", shown)
	}
	r = run(t, "", append([]string{"network", "show"}, common...)...)
	if r.code != 0 || !strings.Contains(r.stdout, "cdn zone: cdn.example.com\n") || !strings.Contains(r.stdout, "sites:    1\n") {
		t.Fatalf("show: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	if r := run(t, "", append([]string{"network", "set", "--cdn-zone", ""}, common...)...); r.code != 0 || r.stdout != "cdn zone: (none)\n" {
		t.Fatalf("clear: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = run(t, "", append([]string{"network", "show"}, common...)...)
	if r.code != 0 || !strings.Contains(r.stdout, "cdn zone: (none)\n") {
		t.Fatalf("show after clearing: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	for _, args := range [][]string{
		{"network", "set", "--cdn-zone", "com"},
		{"network", "set", "--cdn-zone", "cdn_1.example.com"},
		{"network", "set"},
		{"network"},
		{"network", "frob"},
	} {
		if r := run(t, "", append(args, common...)...); r.code != 2 {
			t.Errorf("%v: exit %d, want 2\n%s", args, r.code, r.stderr)
		}
	}
	pdir, _ := publisherKeys(t, keys)
	if r := run(t, "", "network", "set", "--keys", pdir, "--peer", peer.addr, "--cdn-zone", "cdn.example.com"); r.code != 1 || !strings.Contains(r.stderr, "master.key") {
		t.Fatalf("set with a publisher's keys: exit %d\n%s", r.code, r.stderr)
	}
}

// TestPublisherCannotWriteNetwork: no site's grant covers the settings record.
func TestPublisherCannotWriteNetwork(t *testing.T) {
	for _, name := range []string{"default", "blog"} {
		g := dt.Grant{Key: make([]byte, 32), Scope: site.PublisherScope(name)}
		for _, kind := range []dt.Kind{dt.KindPut, dt.KindDelete} {
			if err := g.Covers(netconf.Key, kind, 1); !errors.Is(err, dt.ErrOutsideGrant) {
				t.Errorf("site %s's key may write %s (%v): %v", name, netconf.Key, kind, err)
			}
		}
	}
}
