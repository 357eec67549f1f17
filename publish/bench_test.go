package publish

import (
	"context"
	"fmt"
	"testing"
)

// benchSite writes a 1000-file site: 600 pages, scripts and stylesheets (about 8 KB each, all
// compressed at brotli quality 11), 300 images (20 KB, stored as they are) and 100 JSON files. It
// returns the total size.
func benchSite(b *testing.B, dir string) int64 {
	files := map[string][]byte{}
	var total int64
	add := func(name string, data []byte) {
		files[name] = data
		total += int64(len(data))
	}
	for i := range 600 {
		ext := []string{"html", "css", "js"}[i%3]
		add(fmt.Sprintf("s%d/p%d.%s", i%20, i, ext), htmlPage(i, 8_000))
	}
	for i := range 300 {
		add(fmt.Sprintf("img/i%d.jpg", i), randomBytes(uint64(i), 20_000))
	}
	for i := range 100 {
		var items []byte
		for j := 0; len(items) < 4_000; j++ {
			items = fmt.Appendf(items, `{"id":%d,"name":"item %d of file %d","price":%d.99},`, j, j, i, j*7%100)
		}
		add(fmt.Sprintf("data/d%d.json", i), fmt.Appendf(nil, `{"items":[%s{}]}`, items))
	}
	writeTree(b, dir, files)
	return total
}

// BenchmarkScan1000 scans a 1000-file site at each compression level; MB/s is over the site's
// raw bytes.
func BenchmarkScan1000(b *testing.B) {
	dir := b.TempDir()
	total := benchSite(b, dir)
	for _, c := range []Compression{CompressionBest, CompressionFast} {
		b.Run(c.String(), func(b *testing.B) {
			b.SetBytes(total)
			for b.Loop() {
				p, err := Scan(context.Background(), dir, ScanOptions{Created: created, TempDir: b.TempDir(), Compression: c})
				if err != nil {
					b.Fatal(err)
				}
				p.Close()
			}
		})
	}
}
