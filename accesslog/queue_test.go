package accesslog

import (
	"context"
	"encoding/json"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/dt-cdn/dt/internal/testkit/wait"
)

// TestShardsKeepEveryLineInOrder: records logged from many goroutines at once, spread over the
// queue's shards, are each written once; those one goroutine logs come out in its order.
func TestShardsKeepEveryLineInOrder(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access.log")
	const workers, each = 8, 300
	l, err := New(Config{Path: path, Queue: workers * each, FlushInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if len(l.shards) < 2 {
		t.Fatalf("%d shards: the test needs several", len(l.shards))
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				e := entry(w*each + i) // its time grows with i: one goroutine's order
				e.Site = string(rune('a' + w))
				l.Log(e)
			}
		})
	}
	wg.Wait()
	wait.For(t, 10*time.Second, linesWritten(l, workers*each))
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	seen, last := map[int64]bool{}, map[string]int64{}
	for _, line := range readLines(t, path) {
		var v struct {
			Site  string `json:"site"`
			Bytes int64  `json:"bytes"`
		}
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		if seen[v.Bytes] {
			t.Errorf("record %d written twice", v.Bytes)
		}
		seen[v.Bytes] = true
		if prev, ok := last[v.Site]; ok && v.Bytes < prev {
			t.Errorf("worker %s: record %d after %d", v.Site, v.Bytes, prev)
		}
		last[v.Site] = v.Bytes
	}
	if s := l.Stats(); len(seen) != workers*each || s.QueueFull != 0 {
		t.Errorf("%d distinct records written, want %d; %+v", len(seen), workers*each, s)
	}
}
