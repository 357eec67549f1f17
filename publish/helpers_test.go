package publish

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/zstd"

	"github.com/dt-cdn/dt/blobs"
	"github.com/dt-cdn/dt/site"
)

// created is the deploy time of every test scan, so that ids are reproducible.
var created = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// writeTree writes files (slash-separated path → content) under dir.
func writeTree(t testing.TB, dir string, files map[string][]byte) {
	t.Helper()
	for name, data := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// randomBytes returns n bytes from a seeded generator: random-looking (incompressible) but the
// same in every run.
func randomBytes(seed uint64, n int) []byte {
	var s [32]byte
	s[0] = byte(seed)
	s[1] = byte(seed >> 8)
	b := make([]byte, n)
	rand.NewChaCha8(s).Read(b)
	return b
}

// htmlPage returns a page of about n bytes of HTML-like text, different for each seed.
func htmlPage(seed, n int) []byte {
	var b strings.Builder
	b.WriteString("<!doctype html><html><head><title>Page</title></head><body>\n")
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "<p class=\"para\">Paragraph %d of page %d: the quick brown fox jumps over the lazy dog.</p>\n", i, seed)
	}
	b.WriteString("</body></html>\n")
	return []byte(b.String())
}

// testSite is a small site with text and binary files, subdirectories, rules and 404 pages.
func testSite() map[string][]byte {
	return map[string][]byte{
		"index.html":           htmlPage(1, 20_000),
		"about.html":           htmlPage(2, 3_000),
		"404.html":             []byte("<!doctype html><title>Not found</title><h1>Not found</h1>\n"),
		"docs/404.html":        []byte("<!doctype html><title>No such doc</title>\n"),
		"blog/post/index.html": htmlPage(3, 8_000),
		"css/site.css":         bytes.Repeat([]byte("body { margin: 0 auto; max-width: 60em; font-family: sans-serif; }\n"), 200),
		"js/app.js":            bytes.Repeat([]byte("export function f(x) { return x * 2; }\n"), 300),
		"data.json":            bytes.Repeat([]byte(`{"name":"item","value":12345,"tags":["a","b"]},`), 100),
		"img/logo.svg":         bytes.Repeat([]byte(`<svg xmlns="http://www.w3.org/2000/svg"><circle r="1"/></svg>`), 40),
		"img/photo.jpg":        randomBytes(1, 300_000),
		"fonts/body.woff2":     randomBytes(2, 40_000),
		"big/log.txt":          bytes.Repeat([]byte("2025-06-01 12:00:00 INFO request served in 3ms\n"), 20_000), // variant in a temp file
		"big/large.bin":        randomBytes(3, 5<<20),                                                            // chunked
		"empty.txt":            nil,
		"README":               []byte("plain text without an extension\n"),
		"sub/_redirects":       []byte("/not /rules\n"),
		"_redirects":           []byte("# rules\n/old /about.html 301\n/blog/* /blog/post/:splat 302\n/app/* /index.html 200\n"),
		"_headers":             []byte("/*\n  X-Frame-Options: DENY\n/css/*\n  Cache-Control: public, max-age=31536000, immutable\n"),
	}
}

// scan scans dir with opts (Created set) and closes the plan at the end of the test.
func scan(t testing.TB, dir string, opts ScanOptions) *Plan {
	t.Helper()
	if opts.Created.IsZero() {
		opts.Created = created
	}
	if opts.TempDir == "" {
		opts.TempDir = t.TempDir()
	}
	p, err := Scan(context.Background(), dir, opts)
	if err != nil {
		t.Fatalf("Scan: %v", err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return p
}

// checkPlan checks a plan against the directory it was scanned from: the manifest is valid, has
// a source for every blob but the derived variants (which never travel), and every file's blobs
// (whole, chunks, variants) give back the file's bytes as read from disk now; a derived variant
// is made again with a site.Deriver and must hash as the manifest says, and the brotli variant of
// a file under RawFrom must decompress to it.
func checkPlan(t *testing.T, p *Plan) {
	t.Helper()
	m := p.Manifest
	if err := m.Validate(); err != nil {
		t.Fatalf("manifest invalid: %v", err)
	}
	if _, err := m.Marshal(); err != nil {
		t.Fatal(err)
	}
	var d site.Deriver
	defer d.Close()
	derived := 0
	for _, f := range m.Files {
		for _, v := range f.Variants {
			if v.Level != 0 {
				derived++
			}
		}
	}
	if all := m.Blobs(); len(all)-derived != len(p.Sources) {
		t.Errorf("%d blobs in the manifest (%d derived), %d sources", len(all), derived, len(p.Sources))
	}
	for path, f := range m.Files {
		raw, err := os.ReadFile(filepath.Join(p.Dir, filepath.FromSlash(path[1:])))
		if err != nil {
			t.Fatal(err)
		}
		if blobs.Sum(raw) != f.Hash || int64(len(raw)) != f.Size {
			t.Errorf("%s: hash or size does not match the file", path)
		}
		var content []byte
		if len(f.Chunks) == 0 {
			content = readBlob(t, p, f.Hash)
		}
		for _, c := range f.Chunks {
			content = append(content, readBlob(t, p, c.Hash)...)
		}
		if !bytes.Equal(content, raw) {
			t.Errorf("%s: blobs do not rebuild the file", path)
		}
		if f.RawFrom != "" {
			br := readBlob(t, p, f.Variants[f.RawFrom].Hash)
			if got, err := site.RawFromBrotli(br, f.Size, f.Hash); err != nil || !bytes.Equal(got, raw) {
				t.Errorf("%s: raw content from br: %v", path, err)
			}
		}
		for coding, v := range f.Variants {
			if v.Level != 0 {
				b, err := d.Derive(coding, v.Level, raw)
				if err != nil || blobs.Sum(b) != v.Hash || int64(len(b)) != v.Size {
					t.Errorf("%s: derived %s variant at level %d does not make the manifest's bytes (%v)", path, coding, v.Level, err)
				}
				if dec := decompress(t, coding, b); !bytes.Equal(dec, raw) {
					t.Errorf("%s: derived %s variant does not decompress to the file", path, coding)
				}
				continue
			}
			enc := readBlob(t, p, v.Hash)
			if int64(len(enc)) != v.Size || len(enc) >= len(raw) {
				t.Errorf("%s: %s variant of %d bytes for %d raw", path, coding, len(enc), len(raw))
			}
			if dec := decompress(t, coding, enc); !bytes.Equal(dec, raw) {
				t.Errorf("%s: %s variant does not decompress to the file", path, coding)
			}
		}
	}
}

func readBlob(t *testing.T, p *Plan, h blobs.Hash) []byte {
	t.Helper()
	b, err := p.ReadBlob(h)
	if err != nil {
		t.Fatalf("ReadBlob(%s): %v", h.Short(), err)
	}
	if blobs.Sum(b) != h {
		t.Fatalf("ReadBlob(%s) returned other bytes", h.Short())
	}
	return b
}

// decompress decodes a variant with a decoder independent of the encoder where there is one
// (the standard library's gzip).
func decompress(t *testing.T, coding string, b []byte) []byte {
	t.Helper()
	var r io.Reader
	switch coding {
	case site.EncodingBrotli:
		r = brotli.NewReader(bytes.NewReader(b))
	case site.EncodingGzip:
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		r = zr
	case site.EncodingZstd:
		zr, err := zstd.NewReader(bytes.NewReader(b), zstd.WithDecoderConcurrency(1))
		if err != nil {
			t.Fatal(err)
		}
		defer zr.Close()
		r = zr
	default:
		t.Fatalf("unknown coding %q", coding)
	}
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("%s: %v", coding, err)
	}
	return out
}
