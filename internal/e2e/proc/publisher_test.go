package proc

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dt-cdn/dt/dt"
)

// TestPublisherKeyOverProcesses grants a publisher key the blog of a network of two sites (a hub
// node and two edges, each a process): the key publishes the blog, which every edge serves; its
// attempts at the docs (a publish, a rollback, the docs' removal), the site list (a site added),
// DNS (a zone) and the grants (the docs granted to itself) fail, and no edge's docs change; once
// revoked, the key publishes the blog no more while what it published stays; granted again, it
// publishes again.
func TestPublisherKeyOverProcesses(t *testing.T) {
	skipShort(t)
	t.Parallel()
	began := time.Now()
	n := newNetwork(t, loopbackUnlimited...)
	edges := []*edgeProc{n.startEdge(t, "edge-1", "52.37,4.90", false), n.startEdge(t, "edge-2", "40.71,-74.01", false)}
	k := &keyTest{multiSite: &multiSite{network: n, edges: edges, sites: []siteSpec{
		makeSiteSpec("blog", []string{"blog.test"}, 1, false),
		makeSiteSpec("docs", []string{"docs.test"}, 1, false),
	}}}
	t.Cleanup(k.closeIdle)
	for _, s := range k.sites {
		k.addSite(t, s)
		k.publishSite(t, s, s.name+"-1", edges...)
	}
	// A second deploy of the docs, so that a rollback is refused for the key, not for want of
	// an earlier deploy.
	docs2 := makeSiteSpec("docs", []string{"docs.test"}, 2, false)
	k.publishSite(t, docs2, "docs-2", edges...)
	k.setSite(docs2)
	k.pkeys, k.pub = n.publisherKeys(t)
	c := n.dtCommand(t, "grant", "--keys", n.keys, "--peer", n.hubAddr(), "--site", "blog", k.pub)
	t.Logf("dt grant: %s", strings.TrimSpace(c.stdout))
	k.blog = append(k.blog, k.publishWith(t, k.pkeys, makeSiteSpec("blog", []string{"blog.test"}, 2, false), "blog-2"))

	for _, step := range []struct {
		name string
		run  func(*testing.T)
	}{
		{"refused outside the blog", k.testRefused},
		{"revoked", k.testRevoked},
		{"granted again", k.testGrantedAgain},
	} {
		if !t.Run(step.name, step.run) {
			break
		}
	}
	t.Logf("TestPublisherKeyOverProcesses took %s", time.Since(began).Round(time.Millisecond))
}

// keyTest is the state TestPublisherKeyOverProcesses's steps share.
type keyTest struct {
	*multiSite
	pkeys, pub string   // the publisher's keys directory and public key
	blog       []string // the deploys the key published, oldest first
}

// testRefused has the blog's key try the docs, the site list, DNS and the grants: every attempt
// fails naming the grant, and once a later publish of the blog by the key reached every edge,
// no edge's docs, no site and no zone changed.
func (k *keyTest) testRefused(t *testing.T) {
	docs := k.snapshot(t, "docs")
	docsDeploy := k.healthOf(t, k.edges[0], "docs.test")
	for _, refused := range []struct {
		what string
		bin  string
		args []string
	}{
		{"publish the docs", bins.publish, []string{"--site", "docs", "--json", makeSiteSpec("docs", nil, 9, false).write(t, k.dir, "docs-by-blog-key")}},
		{"roll the docs back", bins.dt, []string{"rollback", "--site", "docs"}},
		{"remove the docs", bins.dt, []string{"site", "remove", "docs"}},
		{"add a site", bins.dt, []string{"site", "add", "evil", "--host", "evil.test"}},
		{"publish a DNS zone", bins.dt, []string{"dns-publish", k.zoneFile(t)}},
		{"grant itself the docs", bins.dt, []string{"grant", "--site", "docs", k.pub}},
	} {
		args := append(refused.args[:len(refused.args):len(refused.args)], "--keys", k.pkeys, "--peer", k.hubAddr(), "--timeout", "10s")
		if refused.args[0] != "grant" { // the others keep a copy of the table
			args = append(args, "--cache-dir", k.cacheFor(k.pkeys))
		}
		c := runCommand(t, time.Minute, k.dir, refused.bin, args...)
		t.Logf("the blog's key tries to %s: exit %d in %s: %s", refused.what, c.code, c.took.Round(time.Millisecond), lastLine(c.stderr))
		if wrote(c.code) || !strings.Contains(c.stderr, "grant") {
			t.Errorf("the blog's key tries to %s: exit %d, want a failure naming the grant:\n%s%s", refused.what, c.code, c.stdout, c.stderr)
		}
	}
	// Once the key's next publish of the blog reached every edge, whatever the attempts wrote
	// reached them too.
	k.blog = append(k.blog, k.publishWith(t, k.pkeys, makeSiteSpec("blog", []string{"blog.test"}, 3, false), "blog-3"))
	checkUnchanged(t, "the blog's key", docs, k.snapshot(t, "docs"))
	for _, e := range k.edges {
		if got := k.healthOf(t, e, "docs.test"); got != docsDeploy {
			t.Errorf("%s serves docs deploy %.12s, was %.12s", e.name, got, docsDeploy)
		}
		if err := checkMisdirected(k.http, e.httpURL(), "evil.test", k.sites); err != nil {
			t.Errorf("%s: %v", e.name, err)
		}
	}
	c := k.dtCommand(t, "sites", "--keys", k.masterKeys(), "--peer", k.hubAddr(), "--json", "--timeout", "30s", "--cache-dir", k.cacheFor(k.masterKeys()))
	if strings.Contains(c.stdout, "evil") || !strings.Contains(c.stdout, "docs") {
		t.Errorf("dt sites after the refused attempts:\n%s", c.stdout)
	}
	// The zone is not in the table: a master would write all of it.
	c = k.dtCommand(t, "dns-publish", "--keys", k.masterKeys(), "--peer", k.hubAddr(), "--dry-run", "--cache-dir", k.cacheFor(k.masterKeys()), k.zoneFile(t))
	if !strings.Contains(c.stdout, "4 RRsets to write, 0 to remove, 0 unchanged") {
		t.Errorf("the zone after the key's refused publish:\n%s", c.stdout)
	}
}

// testRevoked revokes the key: what it published stays the blog's, its next publish fails naming
// the grant, and once a later publish of the docs reached every edge, they still serve the
// key's last deploy of the blog.
func (k *keyTest) testRevoked(t *testing.T) {
	c := k.dtCommand(t, "revoke", "--keys", k.masterKeys(), "--peer", k.hubAddr(), k.pub)
	t.Logf("dt revoke: %s", strings.TrimSpace(c.stdout))
	last := k.blog[len(k.blog)-1]
	if cur := k.currentOf(t, "blog"); cur != last {
		t.Errorf("after the revocation the table's blog is on deploy %.12s, the key published %.12s", cur, last)
	}
	pc, _ := k.publishTo(t, k.pkeys, "blog", makeSiteSpec("blog", nil, 4, false).write(t, k.dir, "blog-4"))
	t.Logf("the revoked key publishes the blog: exit %d in %s: %s", pc.code, pc.took.Round(time.Millisecond), lastLine(pc.stderr))
	if wrote(pc.code) || !strings.Contains(pc.stderr, "grant") {
		t.Errorf("the revoked key publishes the blog: exit %d, want a failure naming the grant\n%s%s", pc.code, pc.stdout, pc.stderr)
	}
	// Once the master's next publish of the docs reached every edge, the refused publish had its
	// chance to reach them.
	k.publishSite(t, makeSiteSpec("docs", []string{"docs.test"}, 3, false), "docs-3", k.edges...)
	for _, e := range k.edges {
		if got := k.healthOf(t, e, "blog.test"); got != last {
			t.Errorf("%s serves blog deploy %.12s after the revoked key's publish, was %.12s", e.name, got, last)
		}
	}
}

// testGrantedAgain grants the key the blog again: the blog stays on the key's last deploy, and
// the key publishes again.
func (k *keyTest) testGrantedAgain(t *testing.T) {
	k.dtCommand(t, "grant", "--keys", k.masterKeys(), "--peer", k.hubAddr(), "--site", "blog", k.pub)
	if cur, last := k.currentOf(t, "blog"), k.blog[len(k.blog)-1]; cur != last {
		t.Errorf("granted again, the table's blog is on deploy %.12q, the key published %.12s", cur, last)
	}
	k.publishWith(t, k.pkeys, makeSiteSpec("blog", []string{"blog.test"}, 5, false), "blog-5")
}

// publisherKeys makes a publisher's keys directory: dt keygen --publisher, and the network's
// network.key and master.pub beside it. It returns the directory and the public key.
func (n *network) publisherKeys(t *testing.T) (dir, pub string) {
	t.Helper()
	dir = filepath.Join(n.dir, "publisher-keys")
	n.dtCommand(t, "keygen", "--publisher", dir)
	for _, f := range []string{dt.NetworkKeyFile, dt.MasterPubKeyFile} {
		copyFile(t, filepath.Join(n.keys, f), filepath.Join(dir, f))
	}
	b, err := os.ReadFile(filepath.Join(dir, dt.PublisherPubKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	return dir, strings.TrimSpace(string(b))
}

// publishWith publishes s with keys, expects it live on every edge (checkLive) and
// checks its files there; it returns the deploy.
func (m *multiSite) publishWith(t *testing.T, keys string, s siteSpec, label string) string {
	t.Helper()
	c, r := m.publishTo(t, keys, s.name, s.write(t, m.dir, label))
	m.checkLive(t, "dt-publish --site "+s.name+" with "+filepath.Base(keys), c, r, s.hosts[0], m.edges)
	m.setSite(s)
	for _, e := range m.edges {
		if err := m.checkSite(e, s, s.hosts[0]); err != nil {
			t.Error(err)
		}
	}
	return r.Deploy
}

// healthOf returns the deploy an edge's health endpoint names for host.
func (m *multiSite) healthOf(t *testing.T, e *edgeProc, host string) string {
	t.Helper()
	r, err := fetch(m.http, e.httpURL()+"/.well-known/dt/health", host)
	if err != nil {
		t.Fatal(err)
	}
	if r.status != 200 {
		t.Fatalf("%s: health of %s: %d %q", e.name, host, r.status, r.body)
	}
	return strings.TrimSpace(r.body)
}

// lastLine is the last non-empty line of s.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// currentOf returns a site's current deploy as dt sites lists it through the hub ("" for none).
func (n *network) currentOf(t *testing.T, name string) string {
	t.Helper()
	c := n.dtCommand(t, "sites", "--keys", n.keys, "--peer", n.hubAddr(), "--json", "--timeout", "30s", "--cache-dir", n.cacheFor(n.keys))
	var list []struct {
		Name    string `json:"name"`
		Current string `json:"current"`
	}
	if err := json.Unmarshal([]byte(c.stdout), &list); err != nil {
		t.Fatalf("dt sites --json: %v\n%s", err, c.stdout)
	}
	for _, s := range list {
		if s.Name == name {
			return s.Current
		}
	}
	return ""
}

// zoneFile writes a small DNS zone, blog.test, and returns its path.
func (n *network) zoneFile(t *testing.T) string {
	t.Helper()
	path := filepath.Join(n.dir, "blog.test.zone")
	zone := "$ORIGIN blog.test.\n$TTL 300\n@ SOA ns1 hostmaster 1 7200 900 1209600 60\n@ NS ns1\nns1 A 127.0.0.53\nwww A 192.0.2.1\n"
	if err := os.WriteFile(path, []byte(zone), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// masterKeys is the network's keys directory, master.key in it.
func (k *keyTest) masterKeys() string { return k.network.keys }
