package site

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/andybalholm/brotli"

	"github.com/dt-cdn/dt/blobs"
)

func brotliOf(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := brotli.NewWriterLevel(&buf, 5)
	w.Write(b)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestDeriverIsDeterministic: two Derivers, and one Deriver reused, make the same bytes, which
// decompress to the input.
func TestDeriverIsDeterministic(t *testing.T) {
	raw := []byte(strings.Repeat("<p>the edge derives its own variants</p>\n", 500))
	var a, b Deriver
	defer a.Close()
	defer b.Close()
	for _, c := range []struct {
		coding string
		level  int
	}{{EncodingZstd, 3}, {EncodingZstd, 4}, {EncodingGzip, 6}, {EncodingGzip, 9}} {
		x, err := a.Derive(c.coding, c.level, raw)
		if err != nil {
			t.Fatal(err)
		}
		y, _ := b.Derive(c.coding, c.level, raw)
		z, _ := a.Derive(c.coding, c.level, raw)
		if !bytes.Equal(x, y) || !bytes.Equal(x, z) || len(x) >= len(raw) {
			t.Errorf("%s %d: %d, %d and %d bytes", c.coding, c.level, len(x), len(y), len(z))
		}
	}
	for _, bad := range []struct {
		coding string
		level  int
	}{{EncodingBrotli, 5}, {EncodingGzip, 0}, {EncodingGzip, 10}, {EncodingZstd, 5}, {"deflate", 6}} {
		if _, err := a.Derive(bad.coding, bad.level, raw); err == nil {
			t.Errorf("Derive(%s, %d) accepted", bad.coding, bad.level)
		}
	}
}

func TestRawFromBrotli(t *testing.T) {
	raw := []byte(strings.Repeat("abc", 1000))
	br := brotliOf(t, raw)
	if got, err := RawFromBrotli(br, int64(len(raw)), blobs.Sum(raw)); err != nil || !bytes.Equal(got, raw) {
		t.Fatalf("RawFromBrotli = %d bytes, %v", len(got), err)
	}
	if _, err := RawFromBrotli(br, int64(len(raw)), blobs.Sum([]byte("other"))); !errors.Is(err, blobs.ErrHashMismatch) {
		t.Errorf("wrong hash: %v", err)
	}
	for _, size := range []int64{0, int64(len(raw)) - 1, int64(len(raw)) + 1} {
		if _, err := RawFromBrotli(br, size, blobs.Sum(raw)); err == nil {
			t.Errorf("size %d accepted", size)
		}
	}
	if _, err := RawFromBrotli([]byte("not brotli at all"), 3, blobs.Sum(raw)); err == nil {
		t.Error("garbage accepted")
	}
}

// FuzzRawFromBrotli: whatever the bytes (they come from the network), the result is bounded by
// the size given and returned only when it hashes right.
func FuzzRawFromBrotli(f *testing.F) {
	raw := []byte(strings.Repeat("xyz", 300))
	f.Add(brotliOf(f, raw), int64(len(raw)))
	f.Add([]byte{0x0b, 0x01, 0x80, 0x61, 0x03}, int64(1))
	f.Fuzz(func(t *testing.T, b []byte, size int64) {
		if size < 0 || size > 1<<20 {
			return
		}
		got, err := RawFromBrotli(b, size, blobs.Sum(raw))
		if err == nil && (!bytes.Equal(got, raw) || int64(len(got)) != size) {
			t.Fatalf("returned %d bytes that are not the content", len(got))
		}
	})
}

// TestValidateDerived: RawFrom only from a brotli variant that travels, of an unchunked file;
// Level only on zstd and gzip variants, within their encoders' levels.
func TestValidateDerived(t *testing.T) {
	raw := blobs.Sum([]byte("raw"))
	v := func(s string, level int) Variant { return Variant{Hash: blobs.Sum([]byte(s)), Size: 10, Level: level} }
	good := File{Hash: raw, Size: 100, Type: "text/html; charset=utf-8", RawFrom: EncodingBrotli,
		Variants: map[string]Variant{EncodingBrotli: v("br", 0), EncodingZstd: v("zstd", 3), EncodingGzip: v("gzip", 9)}}
	check := func(f File) error {
		m := &Manifest{Version: ManifestVersion, Created: time.Unix(1_700_000_000, 0).UTC(), Files: map[string]File{"/index.html": f}}
		return m.Validate()
	}
	if err := check(good); err != nil {
		t.Fatalf("valid file refused: %v", err)
	}
	bad := map[string]func(*File){
		"raw from gzip":          func(f *File) { f.RawFrom = EncodingGzip },
		"raw from missing br":    func(f *File) { delete(f.Variants, EncodingBrotli) },
		"raw from a derived br":  func(f *File) { f.Variants[EncodingBrotli] = v("br", 5) },
		"raw from, chunked":      func(f *File) { f.Chunks = []Chunk{{blobs.Sum([]byte("c1")), 50}, {blobs.Sum([]byte("c2")), 50}} },
		"zstd level 9":           func(f *File) { f.Variants[EncodingZstd] = v("zstd", 9) },
		"gzip level -1":          func(f *File) { f.Variants[EncodingGzip] = v("gzip", -1) },
		"unknown raw-from value": func(f *File) { f.RawFrom = "deflate" },
	}
	for name, mutate := range bad {
		f := good
		f.Variants = map[string]Variant{}
		for k, x := range good.Variants {
			f.Variants[k] = x
		}
		mutate(&f)
		if err := check(f); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	m := &Manifest{Version: ManifestVersion, Files: map[string]File{"/index.html": good}}
	if n, tn := len(m.Blobs()), len(m.TableBlobs()); n != 4 || tn != 1 {
		t.Errorf("Blobs %d, TableBlobs %d: want 4 and 1 (br alone travels)", n, tn)
	}
	if !good.Derived(raw) || !good.Derived(good.Variants[EncodingGzip].Hash) || good.Derived(good.Variants[EncodingBrotli].Hash) {
		t.Error("Derived says otherwise")
	}
}
