package publish

import (
	"context"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/dt-cdn/dt/blobs"
	"github.com/dt-cdn/dt/site"
)

func TestScanSite(t *testing.T) {
	dir := t.TempDir()
	files := testSite()
	writeTree(t, dir, files)
	p := scan(t, dir, ScanOptions{CleanURLs: true})
	checkPlan(t, p)
	m := p.Manifest

	// Every file but the root's rules files is published, under its site path.
	var want []string
	for name := range files {
		if name != "_redirects" && name != "_headers" {
			want = append(want, "/"+name)
		}
	}
	slices.Sort(want)
	if got := slices.Sorted(maps.Keys(m.Files)); !slices.Equal(got, want) {
		t.Fatalf("paths %v, want %v", got, want)
	}
	if !m.CleanURLs || m.SPA || !m.Created.Equal(created) {
		t.Errorf("options not carried into the manifest: %+v", m)
	}

	types := map[string]string{
		"/index.html":       "text/html; charset=utf-8",
		"/css/site.css":     "text/css; charset=utf-8",
		"/js/app.js":        "text/javascript; charset=utf-8",
		"/data.json":        "application/json",
		"/img/logo.svg":     "image/svg+xml",
		"/img/photo.jpg":    "image/jpeg",
		"/fonts/body.woff2": "font/woff2",
		"/README":           "text/plain; charset=utf-8",
		"/empty.txt":        "text/plain; charset=utf-8",
	}
	for path, typ := range types {
		if got := m.Files[path].Type; got != typ {
			t.Errorf("%s: type %q, want %q", path, got, typ)
		}
	}
	// Compressible files get all three variants; compressed formats and empty files none.
	for _, path := range []string{"/index.html", "/css/site.css", "/js/app.js", "/data.json", "/img/logo.svg", "/big/log.txt"} {
		if v := m.Files[path].Variants; len(v) != 3 {
			t.Errorf("%s: variants %v, want br, zstd and gzip", path, slices.Sorted(maps.Keys(v)))
		}
	}
	for _, path := range []string{"/img/photo.jpg", "/fonts/body.woff2", "/big/large.bin", "/empty.txt"} {
		if v := m.Files[path].Variants; len(v) != 0 {
			t.Errorf("%s: unexpected variants %v", path, slices.Sorted(maps.Keys(v)))
		}
	}
	if v := m.Files["/big/log.txt"].Variants[site.EncodingBrotli]; p.Sources[v.Hash].Temp == "" {
		t.Error("the variant of a large file is not in a temporary file")
	}
	// Below ChunkThreshold, a compressible file travels as its brotli variant alone: the raw
	// content and the zstd and gzip variants are derived on the nodes.
	for _, path := range []string{"/index.html", "/big/log.txt"} {
		f := m.Files[path]
		if f.RawFrom != site.EncodingBrotli || f.Variants[site.EncodingZstd].Level == 0 || f.Variants[site.EncodingGzip].Level == 0 || f.Variants[site.EncodingBrotli].Level != 0 {
			t.Errorf("%s: raw from %q, variants %+v: want raw and zstd/gzip derived from br", path, f.RawFrom, f.Variants)
		}
	}
	if n := len(m.Files["/big/large.bin"].Chunks); n < 2 {
		t.Errorf("a 5 MiB file has %d chunks", n)
	}
	if len(m.Files["/index.html"].Chunks) != 0 {
		t.Error("a small file is chunked")
	}

	wantRedirects := []site.Redirect{
		{From: "/old", To: "/about.html", Status: 301},
		{From: "/blog/*", To: "/blog/post/:splat", Status: 302},
		{From: "/app/*", To: "/index.html", Status: 200},
	}
	if !reflect.DeepEqual(m.Redirects, wantRedirects) {
		t.Errorf("redirects %+v", m.Redirects)
	}
	if len(m.Headers) != 2 || m.Headers[1].Path != "/css/*" {
		t.Errorf("headers %+v", m.Headers)
	}
	if !hasWarning(p, "sub/_redirects") {
		t.Errorf("no warning for the nested _redirects: %q", p.Warnings)
	}
	if hasWarning(p, "index.html") {
		t.Errorf("warning about index.html although there is one: %q", p.Warnings)
	}
}

func hasWarning(p *Plan, s string) bool {
	return slices.ContainsFunc(p.Warnings, func(w string) bool { return strings.Contains(w, s) })
}

func TestScanDeterministic(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, testSite())
	id := func(workers int) site.DeployID {
		id, err := scan(t, dir, ScanOptions{Workers: workers}).Manifest.ID()
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	a, b, c := id(0), id(0), id(1)
	if a != b || a != c {
		t.Fatalf("same directory, different ids: %s %s %s", a, b, c)
	}
	// A copy of the site elsewhere is the same deploy.
	dir2 := t.TempDir()
	writeTree(t, dir2, testSite())
	if d := scan(t, dir2, ScanOptions{}).Manifest; mustID(t, d) != a {
		t.Fatal("same content in another directory, different id")
	}
}

func mustID(t *testing.T, m *site.Manifest) site.DeployID {
	t.Helper()
	id, err := m.ID()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestDiff(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, testSite())
	before := scan(t, dir, ScanOptions{})

	// Publishing the same content again sends nothing.
	same := scan(t, dir, ScanOptions{})
	if d := same.Diff(before.Manifest, nil); !d.Empty() || d.SendBytes != 0 {
		t.Fatalf("unchanged site: %+v", d)
	}
	// The first deploy sends every blob.
	first := before.Diff(nil, nil)
	if len(first.Added) != len(before.Manifest.Files) || len(first.Send) != len(before.Manifest.TableBlobs()) || !first.RulesChanged {
		t.Fatalf("first deploy: %d added, %d to send, of %d files and %d blobs in the table", len(first.Added), len(first.Send),
			len(before.Manifest.Files), len(before.Manifest.TableBlobs()))
	}

	// One changed file: the diff names it and exactly its blobs.
	css := filepath.Join(dir, "css", "site.css")
	if err := os.WriteFile(css, []byte("body { color: red; }\n"+strings.Repeat("p { margin: 1em; }\n", 300)), 0o644); err != nil {
		t.Fatal(err)
	}
	after := scan(t, dir, ScanOptions{})
	checkPlan(t, after)
	d := after.Diff(before.Manifest, nil)
	if !slices.Equal(d.Changed, []string{"/css/site.css"}) || len(d.Added) != 0 || len(d.Deleted) != 0 || d.RulesChanged {
		t.Fatalf("diff %+v, want only /css/site.css changed", d)
	}
	f := after.Manifest.Files["/css/site.css"]
	want := []blobs.Hash{f.Variants["br"].Hash} // the raw content and the other variants are derived from it
	if !slices.Equal(d.Send, want) {
		t.Fatalf("send %v, want the file's br variant %v", d.Send, want)
	}
	if wantBytes := f.Variants["br"].Size; d.SendBytes != wantBytes {
		t.Fatalf("send %d bytes, want %d", d.SendBytes, wantBytes)
	}

	// has decides what is sent: a network that lacks a blob of an unchanged file gets it again.
	lost := after.Manifest.Files["/index.html"].Variants["br"].Hash
	held := map[blobs.Hash]bool{}
	for _, h := range before.Manifest.Blobs() {
		held[h] = h != lost
	}
	d = after.Diff(before.Manifest, func(h blobs.Hash) bool { return held[h] })
	if !slices.Contains(d.Send, lost) || len(d.Send) != len(want)+1 {
		t.Fatalf("send %v, want the changed file's blobs and %s", d.Send, lost.Short())
	}

	// Added, deleted, and a rules change.
	writeTree(t, dir, map[string][]byte{"new.html": []byte("<p>new</p>"), "_redirects": []byte("/x /y\n")})
	if err := os.Remove(filepath.Join(dir, "about.html")); err != nil {
		t.Fatal(err)
	}
	d = scan(t, dir, ScanOptions{}).Diff(after.Manifest, nil)
	if !slices.Equal(d.Added, []string{"/new.html"}) || !slices.Equal(d.Deleted, []string{"/about.html"}) || len(d.Changed) != 0 || !d.RulesChanged {
		t.Fatalf("diff %+v", d)
	}
}

// TestChunkedInsert checks what content-defined chunking is for: a 64 MiB file with 100 bytes
// inserted in the middle resends at most 2 MiB.
func TestChunkedInsert(t *testing.T) {
	if testing.Short() {
		t.Skip("writes and scans 128 MiB")
	}
	dir := t.TempDir()
	data := randomBytes(64, 64<<20)
	writeTree(t, dir, map[string][]byte{"index.html": []byte("<p>video</p>"), "video.bin": data})
	before := scan(t, dir, ScanOptions{})
	edited := slices.Concat(data[:32<<20], randomBytes(65, 100), data[32<<20:])
	writeTree(t, dir, map[string][]byte{"video.bin": edited})
	after := scan(t, dir, ScanOptions{})
	checkPlan(t, after)

	d := after.Diff(before.Manifest, nil)
	if !slices.Equal(d.Changed, []string{"/video.bin"}) {
		t.Fatalf("changed %v", d.Changed)
	}
	chunks := after.Manifest.Files["/video.bin"].Chunks
	t.Logf("64 MiB + 100 bytes inserted: %d chunks, %d to send, %d bytes (%.2f MiB)",
		len(chunks), len(d.Send), d.SendBytes, float64(d.SendBytes)/(1<<20))
	if d.SendBytes > 2<<20 {
		t.Fatalf("an insertion of 100 bytes resends %d bytes", d.SendBytes)
	}
	if d.SendBytes < 100 || len(d.Send) == 0 {
		t.Fatal("nothing to send for a changed file")
	}
}

func TestScanRulesErrors(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string][]byte{
		"index.html": []byte("<p>hi</p>"),
		"_redirects": []byte("/a /b\n\n/c javascript:alert(1) 302\n"),
		"_headers":   []byte("/*\n  X-Bad: a\x01b\n"),
	})
	_, err := Scan(context.Background(), dir, ScanOptions{TempDir: t.TempDir()})
	var re *site.RuleError
	if !errors.As(err, &re) {
		t.Fatalf("err = %v, want a *site.RuleError", err)
	}
	for _, want := range []string{filepath.Join(dir, "_redirects") + ":3: ", filepath.Join(dir, "_headers") + ":2: "} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
}

func TestScanWarningsAndEmpty(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string][]byte{"page.html": []byte("<p>no index</p>")})
	if p := scan(t, dir, ScanOptions{}); !hasWarning(p, "index.html") {
		t.Errorf("no warning for a missing index.html: %q", p.Warnings)
	}
	_, err := Scan(context.Background(), dir, ScanOptions{SPA: true})
	if !errors.Is(err, site.ErrInvalidManifest) || !strings.Contains(err.Error(), "SPA") {
		t.Errorf("SPA without index.html: err = %v", err)
	}
	empty := t.TempDir()
	if _, err := Scan(context.Background(), empty, ScanOptions{}); !errors.Is(err, ErrEmpty) {
		t.Errorf("empty directory: err = %v, want ErrEmpty", err)
	}
	// Only rules is a site: a redirect-only deploy.
	writeTree(t, empty, map[string][]byte{"_redirects": []byte("/* https://example.com/:splat 301\n")})
	if p := scan(t, empty, ScanOptions{}); len(p.Manifest.Files) != 0 || len(p.Manifest.Redirects) != 1 {
		t.Errorf("redirect-only site: %+v", p.Manifest)
	}
	if _, err := Scan(context.Background(), filepath.Join(dir, "missing"), ScanOptions{}); err == nil {
		t.Error("missing directory: no error")
	}
}

func TestScanProgressAndCancel(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, testSite())
	var mu sync.Mutex
	var calls []Progress
	p := scan(t, dir, ScanOptions{Progress: func(p Progress) {
		mu.Lock()
		defer mu.Unlock()
		calls = append(calls, p)
	}})
	last := calls[len(calls)-1]
	if last.Files != last.FilesTotal || last.Files != len(p.Manifest.Files) || last.Bytes != last.BytesTotal {
		t.Fatalf("last progress %+v for %d files", last, len(p.Manifest.Files))
	}
	for i := 1; i < len(calls); i++ {
		if calls[i].Files < calls[i-1].Files || calls[i].Bytes < calls[i-1].Bytes {
			t.Fatalf("progress went down: %+v then %+v", calls[i-1], calls[i])
		}
	}
	if len(calls) < len(p.Manifest.Files) {
		t.Fatalf("%d progress calls for %d files", len(calls), len(p.Manifest.Files))
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Scan(ctx, dir, ScanOptions{TempDir: t.TempDir()}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled scan: err = %v", err)
	}
}

func TestPlanDetectsChangeAfterScan(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string][]byte{"index.html": []byte("<p>before</p>")})
	p := scan(t, dir, ScanOptions{})
	h := p.Manifest.Files["/index.html"].Hash
	writeTree(t, dir, map[string][]byte{"index.html": []byte("<p>AFTER!</p>")}) // same size
	if _, err := p.ReadBlob(h); !errors.Is(err, ErrChanged) {
		t.Fatalf("ReadBlob of a changed file: err = %v, want ErrChanged", err)
	}
	if _, err := p.ReadBlob(blobs.Sum([]byte("nope"))); !errors.Is(err, ErrUnknownBlob) {
		t.Fatalf("ReadBlob of an unknown blob: err = %v", err)
	}
}

func TestScanTempFilesRemoved(t *testing.T) {
	dir, tmp := t.TempDir(), t.TempDir()
	writeTree(t, dir, testSite())
	p, err := Scan(context.Background(), dir, ScanOptions{TempDir: tmp, Created: created})
	if err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(tmp); len(ents) == 0 {
		t.Fatal("no temporary directory for large variants")
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if ents, _ := os.ReadDir(tmp); len(ents) != 0 {
		t.Fatalf("temporary files left after Close: %v", ents)
	}
	// A failed scan leaves nothing behind either.
	writeTree(t, dir, map[string][]byte{"_headers": []byte("bad\n")})
	if _, err := Scan(context.Background(), dir, ScanOptions{TempDir: tmp}); err == nil {
		t.Fatal("bad _headers accepted")
	}
	if ents, _ := os.ReadDir(tmp); len(ents) != 0 {
		t.Fatalf("temporary files left after a failed scan: %v", ents)
	}
}
