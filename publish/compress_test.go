package publish

import (
	"fmt"
	"testing"

	"github.com/dt-cdn/dt/site"
)

func TestParseCompression(t *testing.T) {
	for _, c := range []Compression{CompressionAuto, CompressionBest, CompressionFast} {
		got, err := ParseCompression(c.String())
		if err != nil || got != c {
			t.Errorf("ParseCompression(%q) = %v, %v; want %v", c.String(), got, err, c)
		}
	}
	for _, bad := range []string{"", "Best", "11", "max"} {
		if _, err := ParseCompression(bad); err == nil {
			t.Errorf("ParseCompression(%q) accepted", bad)
		}
	}
}

func TestCompressionResolve(t *testing.T) {
	tests := []struct {
		c     Compression
		total int64
		want  Compression
	}{
		{CompressionAuto, 0, CompressionBest},
		{CompressionAuto, AutoBestMax, CompressionBest},
		{CompressionAuto, AutoBestMax + 1, CompressionFast},
		{CompressionBest, 1 << 40, CompressionBest},
		{CompressionFast, 1, CompressionFast},
	}
	for _, tt := range tests {
		if got := tt.c.resolve(tt.total); got != tt.want {
			t.Errorf("%v.resolve(%d) = %v, want %v", tt.c, tt.total, got, tt.want)
		}
	}
}

// TestScanCompressionLevels scans one site with each level: every variant decompresses to its
// file either way, the best level's brotli variants are no larger than the fast level's, and the
// plan says which level it used.
func TestScanCompressionLevels(t *testing.T) {
	dir := t.TempDir()
	files := map[string][]byte{}
	for i := range 6 {
		files[fmt.Sprintf("p%d.html", i)] = htmlPage(i, 20_000)
	}
	writeTree(t, dir, files)

	brSizes := map[Compression]int64{}
	for _, c := range []Compression{CompressionAuto, CompressionBest, CompressionFast} {
		p := scan(t, dir, ScanOptions{Compression: c})
		checkPlan(t, p)
		want := c.resolve(0)
		if p.Compression != want {
			t.Errorf("%v: plan says %v, want %v", c, p.Compression, want)
		}
		for path, f := range p.Manifest.Files {
			v, ok := f.Variants[site.EncodingBrotli]
			if !ok {
				t.Fatalf("%v: %s has no br variant", c, path)
			}
			brSizes[c] += v.Size
		}
	}
	if brSizes[CompressionBest] > brSizes[CompressionFast] {
		t.Errorf("best br variants total %d bytes, fast %d", brSizes[CompressionBest], brSizes[CompressionFast])
	}
	if brSizes[CompressionAuto] != brSizes[CompressionBest] {
		t.Errorf("auto on a small site: %d bytes of br, best %d", brSizes[CompressionAuto], brSizes[CompressionBest])
	}
	t.Logf("br bytes of 6 pages: best %d, fast %d", brSizes[CompressionBest], brSizes[CompressionFast])
}
