package accesslog

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dt-cdn/dt/internal/testkit/wait"
)

// TestShardsKeepEveryLineInOrder: records logged from many goroutines at once, racing for the
// queue's slots, are each written once; those one goroutine logs come out in its order.
func TestShardsKeepEveryLineInOrder(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access.log")
	const workers, each = 8, 300
	l, err := New(Config{Path: path, Queue: workers * each, FlushInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
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

// TestLinesAcrossSlotsAndLaps: lines of one to several slots, logged by many goroutines into a
// small queue that wraps around many times, come out whole, once each and in each goroutine's
// order; those that found the queue full are counted, and nothing else is lost.
func TestLinesAcrossSlotsAndLaps(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access.log")
	const workers, each = 4, 500
	l, err := New(Config{Path: path, Queue: 16, FlushInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				n := w*each + i
				e := entry(n)
				e.Site = string(rune('a' + w))
				e.URI, e.UserAgent = uriOf(n), strings.Repeat("u", n%MaxHeaderBytes)
				l.Log(e)
			}
		})
	}
	wg.Wait()
	wait.For(t, 10*time.Second, func() error {
		if s := l.Stats(); s.Lines+s.QueueFull < workers*each {
			return fmt.Errorf("%+v, want %d written or dropped", s, workers*each)
		}
		return nil
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	lines, last := readLines(t, path), map[string]int64{}
	for _, line := range lines {
		var v struct {
			Site, Path string
			Bytes      int64
		}
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		if v.Path != uriOf(int(v.Bytes)) {
			t.Fatalf("line %d has path %q, want %q", v.Bytes, v.Path, uriOf(int(v.Bytes)))
		}
		if prev, ok := last[v.Site]; ok && v.Bytes <= prev {
			t.Errorf("worker %s: record %d after %d", v.Site, v.Bytes, prev)
		}
		last[v.Site] = v.Bytes
	}
	if s := l.Stats(); s.Lines != uint64(len(lines)) || s.Lines+s.QueueFull != workers*each {
		t.Errorf("%d lines in the file, Stats %+v: want them to add up to %d", len(lines), s, workers*each)
	}
}

// uriOf is record n's URI, up to two slots long, its bytes telling which line a slot's piece
// came from.
func uriOf(n int) string {
	return fmt.Sprintf("/%d/", n) + strings.Repeat(string(rune('a'+n%26)), n*37%(MaxURIBytes-10))
}

// TestLineLongerThanQueue: a line that cannot fit the whole queue is dropped and counted; the
// next one is written.
func TestLineLongerThanQueue(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access.log")
	l, err := New(Config{Path: path, Queue: 2})
	if err != nil {
		t.Fatal(err)
	}
	long := entry(1)
	long.URI = "/" + strings.Repeat("x", MaxURIBytes)
	l.Log(long)
	l.Log(entry(2))
	stop := run(t, l)
	wait.For(t, 5*time.Second, linesWritten(l, 1))
	stop()
	if s := l.Stats(); s.QueueFull != 1 || s.Lines != 1 {
		t.Errorf("Stats = %+v, want the long line dropped and the short one written", s)
	}
	if lines := readLines(t, path); len(lines) != 1 || !strings.Contains(lines[0], "/p/2?") {
		t.Errorf("lines %q, want the one of /p/2", lines)
	}
}

// TestLogDoesNotAllocate: a common line is formatted and queued without allocating, in both
// formats.
func TestLogDoesNotAllocate(t *testing.T) {
	for _, f := range []Format{JSON, Combined} {
		l, err := New(Config{Path: Stdout, Stdout: nopWriter{}, Format: f, Queue: 1 << 12})
		if err != nil {
			t.Fatal(err)
		}
		e := entry(1)
		e.UserAgent = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
		l.Log(e) // the first of its second makes the second's text
		if n := testing.AllocsPerRun(1000, func() { l.Log(e) }); n != 0 {
			t.Errorf("%s: Log allocates %v times a line", f, n)
		}
		l.Close()
	}
}

// TestBusyLoggerLetsTheWriterRun: on one core, a goroutine that logs without ever blocking (a
// connection whose requests keep arriving) lets the writer run once the queue is half full,
// instead of keeping the core until the scheduler preempts it: no line is dropped. The lines go
// to memory, so that only the scheduling is tested, not the disk.
func TestBusyLoggerLetsTheWriterRun(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	const queue, n = 256, 20_000
	l, err := New(Config{Path: Stdout, Stdout: nopWriter{}, Queue: queue})
	if err != nil {
		t.Fatal(err)
	}
	stop := run(t, l)
	e := entry(1)
	for range n {
		l.Log(e)
	}
	wait.For(t, 10*time.Second, linesWritten(l, n-l.Stats().QueueFull))
	stop()
	if s := l.Stats(); s.QueueFull != 0 || s.Lines != n {
		t.Errorf("Stats = %+v, want all %d lines written", s, n)
	}
}

// TestRingNudges: the writer is woken when the queue reaches half, and again at each eighth
// more while it has not caught up, never twice for one step.
func TestRingNudges(t *testing.T) {
	q := newRing(64) // half 32, steps of 8
	for _, c := range []struct {
		before, after uint64
		want          bool
	}{
		{0, 1, false}, {30, 31, false}, {31, 32, true}, {30, 34, true}, {32, 33, false},
		{39, 40, true}, {40, 41, false}, {47, 48, true}, {55, 56, true}, {63, 64, true}, {33, 39, false},
	} {
		if got := q.nudges(c.before, c.after); got != c.want {
			t.Errorf("nudges(%d, %d) = %v, want %v", c.before, c.after, got, c.want)
		}
	}
}
