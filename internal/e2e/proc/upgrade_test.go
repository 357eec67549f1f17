package proc

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dt-cdn/dt/site"
)

// upgradeFixture is expected.json of a fixture: what the earlier release's edge served.
type upgradeFixture struct {
	Release string `json:"release"`
	Files   map[string]struct {
		SHA256 string `json:"sha256"`
		ETag   string `json:"etag"`
	} `json:"files"`
}

// TestUpgrade runs this build on the data of networks that earlier releases built
// (testdata/upgrade/<release>.tar.gz, made by scripts/make-upgrade-fixture.sh: keys, a hub node's
// and an edge's data directories, and what the edge served). Upgraded in place, the edge serves
// every path with the same bytes and the same ETag as before, from its own disk. The network
// then takes a second site (dt site add, dt-publish --site), served on its hosts while the first
// site keeps the same bytes and ETags, and a deploy of the first site published by this build's
// dt-publish through the upgraded hub, which leaves the second site as it was.
func TestUpgrade(t *testing.T) {
	skipShort(t)
	fixtures, err := filepath.Glob(filepath.Join("testdata", "upgrade", "*.tar.gz"))
	if err != nil || len(fixtures) == 0 {
		t.Fatalf("no upgrade fixtures in testdata/upgrade (%v)", err)
	}
	for _, f := range fixtures {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".tar.gz"), func(t *testing.T) { testUpgrade(t, f) })
	}
}

func testUpgrade(t *testing.T, archive string) {
	n := emptyNetwork(t)
	staging := t.TempDir()
	if err := untar(archive, staging); err != nil {
		t.Fatal(err)
	}
	var want upgradeFixture
	if b, err := os.ReadFile(filepath.Join(staging, "expected.json")); err != nil {
		t.Fatal(err)
	} else if err := json.Unmarshal(b, &want); err != nil || len(want.Files) == 0 {
		t.Fatalf("expected.json: %v (%d files)", err, len(want.Files))
	}
	// The layout of a network's directory: DIR/keys, DIR/<process>/data.
	moves := map[string]string{"keys": n.keys, "hub": filepath.Join(n.dir, "hub", "data"), "edge": filepath.Join(n.dir, "edge", "data")}
	for from, to := range moves {
		if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(filepath.Join(staging, from), to); err != nil {
			t.Fatal(err)
		}
	}

	n.startHub(t)
	e := n.startEdge(t, "edge", "52.37,4.90", false)
	// Ready means listening; the edge loads its deploy from its own disk just after.
	waitFor(t, 30*time.Second, "the upgraded edge serves its deploy", func() error {
		if code, _, _, err := n.get(e.url() + "/"); err != nil || code != http.StatusOK {
			return fmt.Errorf("GET /: %d %v", code, err)
		}
		return nil
	})
	checkFixture(t, n, e, want)

	// The network takes a second site; the first, the fixture's default site, stays as it was.
	m := &multiSite{network: n, edges: []*edgeProc{e}, sites: []siteSpec{
		makeSiteSpec("second", []string{"second.test", "www.second.test"}, 1, false)}}
	second := m.sites[0]
	m.addSite(t, second)
	m.publishSite(t, second, "second-1", e)
	for _, h := range second.hosts {
		if err := m.checkSite(e, second, h); err != nil {
			t.Error(err)
		}
	}
	for path, f := range want.Files {
		if r, err := fetch(n.http, e.url()+path, "second.test"); err != nil || r.sum == f.SHA256 {
			t.Errorf("second.test, GET %s: the first site's bytes (%v)", path, err)
		}
	}
	checkFixture(t, n, e, want)
	secondBefore := m.snapshot(t, "second")

	s := makeSite(1)
	if c, _ := n.publishTo(t, n.keys, site.DefaultSite, s.write(t, n.dir)); c.code != 0 {
		t.Fatalf("dt-publish --site %s: exit %d\n%s%s", site.DefaultSite, c.code, c.stdout, c.stderr)
	}
	waitFor(t, 30*time.Second, "the upgraded edge serves the new deploy", func() error { return n.checkServes(e, s) })
	checkUnchanged(t, "a publish of the first site", secondBefore, m.snapshot(t, "second"))
}

// checkFixture checks that the edge serves every path of the fixture with the bytes and the
// ETag the earlier release served.
func checkFixture(t *testing.T, n *network, e *edgeProc, want upgradeFixture) {
	t.Helper()
	for path, f := range want.Files {
		req, err := http.NewRequest(http.MethodGet, e.url()+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		// As the fixture was recorded: without it Go's client would ask for gzip, and get the
		// gzip variant's ETag.
		req.Header.Set("Accept-Encoding", "identity")
		resp, err := n.http.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(body)
		if resp.StatusCode != http.StatusOK || hex.EncodeToString(sum[:]) != f.SHA256 || resp.Header.Get("ETag") != f.ETag {
			t.Errorf("after the upgrade from %s, GET %s: %s, sha256 %x, ETag %s; the earlier release served sha256 %s, ETag %s",
				want.Release, path, resp.Status, sum, resp.Header.Get("ETag"), f.SHA256, f.ETag)
		}
	}
}

// untar unpacks a gzipped tar archive of regular files and directories into dir.
func untar(archive, dir string) error {
	f, err := os.Open(archive)
	if err != nil {
		return err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return fmt.Errorf("%s: %w", archive, err)
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", archive, err)
		}
		if !filepath.IsLocal(h.Name) {
			return fmt.Errorf("%s: entry %q leaves the directory", archive, h.Name)
		}
		path := filepath.Join(dir, h.Name)
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(path, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := writeFile(path, tr, os.FileMode(h.Mode).Perm()); err != nil {
				return err
			}
		default:
			return fmt.Errorf("%s: entry %q is neither a file nor a directory", archive, h.Name)
		}
	}
}

func writeFile(path string, r io.Reader, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, r)
	return errors.Join(err, f.Close())
}
