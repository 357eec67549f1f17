package publish

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkIncrementalPublish publishes a generated site of 1,000 files (half text, half
// binary) to two edges, then changes one 20 KiB text file and publishes again, reporting the
// bytes the publisher put on the wire for the change and the time until every edge serves it:
//
//	go test -run '^$' -bench BenchmarkIncrementalPublish -benchtime 3x ./publish/
func BenchmarkIncrementalPublish(b *testing.B) {
	keys, addr, _ := testNetwork(b, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	opts := NetworkOptions{Keys: keys, Peers: []string{addr}, HeartbeatInterval: testBeat, Wait: time.Minute, Node: testNodeConfig()}
	dir := b.TempDir()
	for i := range 1000 {
		var content []byte
		if i%2 == 0 {
			content = []byte(fmt.Sprintf("<p>page %d</p>\n", i))
			for len(content) < 20<<10 {
				content = append(content, fmt.Sprintf("<p>line %d of page %d, some text to compress</p>\n", len(content), i)...)
			}
		} else {
			content = make([]byte, 20<<10)
			rand.Read(content)
		}
		name := filepath.Join(dir, fmt.Sprintf("d%02d", i%50), fmt.Sprintf("f%04d.%s", i, map[bool]string{true: "html", false: "bin"}[i%2 == 0]))
		os.MkdirAll(filepath.Dir(name), 0o755)
		if err := os.WriteFile(name, content, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	start := time.Now()
	full := publishBench(b, ctx, dir, opts)
	b.Logf("full publish of 1000 files (20 MB): %s, %d blobs, %d raw bytes, %d bytes on the wire", time.Since(start).Round(time.Millisecond), full.BlobsSent, full.BytesSent, full.WireBytes)
	var wire, raw int64
	for i := 0; b.Loop(); i++ {
		name := filepath.Join(dir, "d00", "f0000.html")
		content := []byte(fmt.Sprintf("<p>changed %d</p>\n", i))
		for len(content) < 20<<10 {
			content = append(content, fmt.Sprintf("<p>changed line %d, some text to compress</p>\n", len(content))...)
		}
		if err := os.WriteFile(name, content, 0o644); err != nil {
			b.Fatal(err)
		}
		res := publishBench(b, ctx, dir, opts)
		if res.EdgesLive != 2 || len(res.Diff.Changed) != 1 {
			b.Fatalf("incremental publish: %+v", res.Diff)
		}
		wire += int64(res.WireBytes)
		raw += res.BytesSent
	}
	b.ReportMetric(float64(wire)/float64(b.N), "wire-bytes/op")
	b.ReportMetric(float64(raw)/float64(b.N), "blob-bytes/op")
}

func publishBench(b *testing.B, ctx context.Context, dir string, opts NetworkOptions) Result {
	plan, err := Scan(ctx, dir, ScanOptions{Created: time.Now()})
	if err != nil {
		b.Fatal(err)
	}
	defer plan.Close()
	res, err := Publish(ctx, plan, opts)
	if err != nil {
		b.Fatal(err)
	}
	return res
}
