package accesslog

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dt-cdn/dt/internal/testkit/needs"
	"github.com/dt-cdn/dt/internal/testkit/promtest"
	"github.com/dt-cdn/dt/internal/testkit/wait"
)

// run starts l's writer and stops it at cleanup, failing on its error.
func run(t *testing.T, l *Logger) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	var stopped bool
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
	t.Cleanup(stop)
	return stop
}

func entry(i int) *Entry {
	return &Entry{Time: time.Date(2026, 12, 7, 18, 0, 0, i, time.UTC), Site: "blog", Host: "blog.example", Method: "GET",
		URI: fmt.Sprintf("/p/%d?q=1", i), Proto: "HTTP/2.0", TLSVersion: tls.VersionTLS13, Encoding: "gzip",
		Referer: "https://ref.example/", UserAgent: "curl/8", RemoteAddr: "192.0.2.77:5555", Status: 200, Bytes: int64(i), Duration: time.Millisecond}
}

// readLines returns the lines of the file at path.
func readLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

func linesWritten(l *Logger, n uint64) func() error {
	return func() error {
		if s := l.Stats(); s.Lines+s.WriteFailed < n {
			return fmt.Errorf("%+v, want %d lines", s, n)
		}
		return nil
	}
}

func TestJSONLineHasEveryField(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access.log")
	l, err := New(Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	stop := run(t, l)
	e := entry(7)
	l.Log(e)
	wait.For(t, 5*time.Second, linesWritten(l, 1))
	stop()
	lines := readLines(t, path)
	if len(lines) != 1 {
		t.Fatalf("%d lines, want 1", len(lines))
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &got); err != nil {
		t.Fatalf("line %q: %v", lines[0], err)
	}
	want := map[string]any{"time": e.Time.Format(time.RFC3339Nano), "site": e.Site, "host": e.Host, "method": e.Method,
		"path": e.URI, "status": float64(e.Status), "bytes": float64(e.Bytes), "duration": e.Duration.Seconds(),
		"protocol": e.Proto, "tls": "1.3", "encoding": e.Encoding, "referer": e.Referer, "user_agent": e.UserAgent,
		"client": "192.0.2.77"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %#v, want %#v", k, got[k], v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("fields %v, want those of %v", got, want)
	}
}

func TestCombinedLine(t *testing.T) {
	e := entry(3)
	e.UserAgent = `evil "agent"` + "\n"
	e.Referer = ""
	var r record
	r.set(e)
	got := string(appendCombined(nil, &r, true, nil))
	want := `192.0.2.0 - - [07/Dec/2026:18:00:00 +0000] "GET /p/3?q=1 HTTP/2.0" 200 3 "-" "evil \x22agent\x22\x0a"` + "\n"
	if got != want {
		t.Errorf("combined line\n got %q\nwant %q", got, want)
	}
}

func TestClientAddrTruncation(t *testing.T) {
	for _, tc := range []struct{ remote, whole, truncated string }{
		{"192.0.2.77:80", "192.0.2.77", "192.0.2.0"},
		{"[2001:db8:1:2:3::4]:443", "2001:db8:1:2:3::4", "2001:db8:1::"},
		{"[::ffff:198.51.100.9]:1", "198.51.100.9", "198.51.100.0"},
		{"[fe80::1%eth0]:1", "fe80::1", "fe80::"},
		{"not an address", "not an address", "-"},
		{"1.2.3.4", "1.2.3.4", "-"},
	} {
		if got := string(clientAddr(nil, []byte(tc.remote), false)); got != tc.whole {
			t.Errorf("clientAddr(%q) = %q, want %q", tc.remote, got, tc.whole)
		}
		if got := string(clientAddr(nil, []byte(tc.remote), true)); got != tc.truncated {
			t.Errorf("clientAddr(%q, truncated) = %q, want %q", tc.remote, got, tc.truncated)
		}
	}
}

// TestQueueBound: with the writer stopped, Log never blocks; past Queue records it drops and
// counts, and the writer later writes exactly the queued ones.
func TestQueueBound(t *testing.T) {
	const queue, logged = 8, 50
	path := filepath.Join(t.TempDir(), "access.log")
	reg := prometheus.NewRegistry()
	l, err := New(Config{Path: path, Queue: queue, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	for i := range logged {
		l.Log(entry(i))
	}
	if got := l.Stats().QueueFull; got != logged-queue {
		t.Errorf("QueueFull = %d, want %d", got, logged-queue)
	}
	if got := promtest.Value(t, reg, "dt_edge_access_log_dropped_total", "reason=queue_full"); got != logged-queue {
		t.Errorf("dt_edge_access_log_dropped_total{reason=queue_full} = %v, want %d", got, logged-queue)
	}
	stop := run(t, l)
	wait.For(t, 5*time.Second, linesWritten(l, queue))
	stop()
	if lines := readLines(t, path); len(lines) != queue {
		t.Errorf("%d lines written, want the %d queued", len(lines), queue)
	}
	if got := promtest.Value(t, reg, "dt_edge_access_log_lines_total"); got != queue {
		t.Errorf("dt_edge_access_log_lines_total = %v, want %d", got, queue)
	}
}

// TestReopenAfterRename does what logrotate does: rename the file, then ask for a reopen. Lines
// before go to the renamed file, lines after to a new file at the path.
func TestReopenAfterRename(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "access.log")
	l, err := New(Config{Path: path, Format: Combined})
	if err != nil {
		t.Fatal(err)
	}
	stop := run(t, l)
	l.Log(entry(1))
	wait.For(t, 5*time.Second, linesWritten(l, 1))
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	l.Log(entry(2)) // written to the renamed file: the reopen is not asked for yet
	wait.For(t, 5*time.Second, linesWritten(l, 2))
	l.Reopen()
	l.Log(entry(3))
	wait.For(t, 5*time.Second, linesWritten(l, 3))
	stop()
	if old := readLines(t, path+".1"); len(old) != 2 || !strings.Contains(old[0], "/p/1?") || !strings.Contains(old[1], "/p/2?") {
		t.Errorf("renamed file: %q, want the lines of /p/1 and /p/2", old)
	}
	if cur := readLines(t, path); len(cur) != 1 || !strings.Contains(cur[0], "/p/3?") {
		t.Errorf("reopened file: %q, want the line of /p/3", cur)
	}
}

// TestRotateBySize writes past MaxSize many times over: no file exceeds it, Keep old files stay,
// and the newest lines are in FILE.
func TestRotateBySize(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "access.log")
	const maxSize, keep, n = 2000, 2, 100
	l, err := New(Config{Path: path, MaxSize: maxSize, Keep: keep, FlushInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	stop := run(t, l)
	for i := range n {
		l.Log(entry(i))
		wait.For(t, 5*time.Second, linesWritten(l, uint64(i+1))) // one at a time: nothing dropped
	}
	stop()
	names, err := filepath.Glob(path + "*")
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != keep+1 {
		t.Errorf("files %q, want FILE and %d old ones", names, keep)
	}
	for _, name := range names {
		fi, err := os.Stat(name)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() > maxSize {
			t.Errorf("%s: %d bytes, over MaxSize %d", name, fi.Size(), maxSize)
		}
	}
	cur := readLines(t, path)
	if last := cur[len(cur)-1]; !strings.Contains(last, fmt.Sprintf("/p/%d?", n-1)) {
		t.Errorf("last line of FILE %q, want the last one logged", last)
	}
	older := readLines(t, path+".1")
	if !strings.Contains(cur[0], fmt.Sprintf("/p/%d?", n-len(cur))) || !strings.Contains(older[len(older)-1], fmt.Sprintf("/p/%d?", n-len(cur)-1)) {
		t.Errorf("FILE.1 does not end where FILE begins: %q … %q", older[len(older)-1], cur[0])
	}
}

// TestFullDisk writes to /dev/full, whose every write fails with ENOSPC as on a full disk:
// lines are dropped and counted, and Log never blocks.
func TestFullDisk(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		needs.Skipf(t, "needs /dev/full (Linux): %v", err)
	}
	reg := prometheus.NewRegistry()
	l, err := New(Config{Path: "/dev/full", Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	stop := run(t, l)
	const n = 20
	for i := range n {
		l.Log(entry(i))
	}
	wait.For(t, 5*time.Second, linesWritten(l, n))
	stop()
	if s := l.Stats(); s.WriteFailed != n || s.Lines != 0 {
		t.Errorf("Stats = %+v, want %d failed and none written", s, n)
	}
	if got := promtest.Value(t, reg, "dt_edge_access_log_dropped_total", "reason=write_failed"); got != n {
		t.Errorf("dt_edge_access_log_dropped_total{reason=write_failed} = %v, want %d", got, n)
	}
}

// TestStdout writes to Config.Stdout with Path "-".
func TestStdout(t *testing.T) {
	var out strings.Builder
	l, err := New(Config{Path: Stdout, Stdout: &out})
	if err != nil {
		t.Fatal(err)
	}
	stop := run(t, l)
	l.Log(entry(1))
	l.Reopen() // nothing to reopen: harmless
	wait.For(t, 5*time.Second, linesWritten(l, 1))
	stop()
	sc := bufio.NewScanner(strings.NewReader(out.String()))
	if !sc.Scan() || !json.Valid(sc.Bytes()) || sc.Scan() {
		t.Errorf("standard output %q, want one JSON line", out.String())
	}
}

// TestFieldsAreCapped: a huge header costs a record no more than RecordBytes.
func TestFieldsAreCapped(t *testing.T) {
	e := entry(1)
	e.UserAgent = strings.Repeat("u", 10_000)
	e.URI = "/" + strings.Repeat("p", 10_000)
	var r record
	r.set(e)
	if got := len(r.get(fUserAgent)); got != MaxHeaderBytes {
		t.Errorf("user agent kept %d bytes, want %d", got, MaxHeaderBytes)
	}
	if got := len(r.get(fURI)); got != MaxURIBytes {
		t.Errorf("URI kept %d bytes, want %d", got, MaxURIBytes)
	}
	if got := string(r.get(fRemote)); got != e.RemoteAddr {
		t.Errorf("remote %q, want %q (fields after a capped one intact)", got, e.RemoteAddr)
	}
}

func TestConfigValidation(t *testing.T) {
	for _, c := range []Config{{}, {Path: "x", Format: 9}, {Path: "x", MaxSize: -1}} {
		if _, err := New(c); err == nil {
			t.Errorf("New(%+v) accepted", c)
		}
	}
	if _, err := New(Config{Path: filepath.Join(t.TempDir(), "no", "such", "dir")}); err == nil {
		t.Error("New accepted a path in a missing directory")
	}
}

// TestStalledWriterNeverBlocksLog: with the writer stuck in a write that does not return (a
// disk that stopped answering), Log returns at once, and past the queue records are dropped.
func TestStalledWriterNeverBlocksLog(t *testing.T) {
	pr, pw := io.Pipe()
	const queue, n = 16, 1000
	l, err := New(Config{Path: Stdout, Stdout: pw, Queue: queue})
	if err != nil {
		t.Fatal(err)
	}
	stop := run(t, l)
	for i := range n {
		l.Log(entry(i)) // the first is taken by the writer, which then blocks in Write
	}
	// The writer holds at most a batch and the queue: the rest is dropped.
	if s := l.Stats(); s.QueueFull == 0 || s.Lines != 0 {
		t.Errorf("Stats with the writer stalled = %+v, want some dropped, none written", s)
	}
	go io.Copy(io.Discard, pr) // the disk answers again
	wait.For(t, 5*time.Second, linesWritten(l, n-l.Stats().QueueFull))
	stop()
	pr.Close()
	if s := l.Stats(); s.Lines+s.QueueFull != n {
		t.Errorf("Stats = %+v: written and dropped do not add up to the %d logged", s, n)
	}
}
