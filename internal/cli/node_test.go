package cli

import (
	"bufio"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dt-cdn/dt/internal/testkit/syncbuf"
)

// runningNode is `dt node` running in a goroutine of the test.
type runningNode struct {
	info   NodeInfo
	stderr *syncbuf.Buffer
	cancel context.CancelFunc
	done   chan int // the exit code
}

// startNodeCmd runs `dt node args...` until the test ends (or stop), and returns once it serves.
func startNodeCmd(t *testing.T, args ...string) *runningNode {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	rn := &runningNode{stderr: &syncbuf.Buffer{}, cancel: cancel, done: make(chan int, 1)}
	ready := make(chan NodeInfo, 1)
	env := &Env{Stdin: strings.NewReader(""), Stdout: io.Discard, Stderr: rn.stderr, NodeReady: func(i NodeInfo) { ready <- i }}
	go func() { rn.done <- Run(ctx, append([]string{"node"}, args...), env) }()
	select {
	case rn.info = <-ready:
	case code := <-rn.done:
		cancel()
		t.Fatalf("dt node exited with %d before serving:\n%s", code, rn.stderr)
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("dt node did not start")
	}
	t.Cleanup(func() { rn.stop(t) })
	return rn
}

// stop cancels the node (as SIGINT does) and checks that it exits 0. Safe to call twice.
func (rn *runningNode) stop(t *testing.T) {
	t.Helper()
	rn.cancel()
	if code, ok := <-rn.done; ok {
		close(rn.done)
		if code != 0 {
			t.Errorf("dt node exited with %d:\n%s", code, rn.stderr)
		}
	}
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET %s: %s %s", url, resp.Status, resp.Header.Get("Content-Type"))
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

func getBody(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s %v", url, resp.Status, err)
	}
	return string(b)
}

func TestNodeAdmin(t *testing.T) {
	keys := keygen(t)
	rn := startNodeCmd(t, "--keys", keys, "--data", t.TempDir(), "--master", "--listen", "127.0.0.1:0",
		"--listen", "[::1]:0", "--admin", "127.0.0.1:0", "--local", "--no-sync", "--log-format", "json")
	if len(rn.info.Listen) != 2 || strings.HasSuffix(rn.info.Listen[0], ":0") || rn.info.Admin == "" || strings.HasSuffix(rn.info.Admin, ":0") {
		t.Fatalf("ready info not resolved: %+v", rn.info)
	}
	base := "http://" + rn.info.Admin

	var st map[string]any
	getJSON(t, base+"/status", &st)
	for _, k := range []string{"node_id", "master", "objects", "peers", "links", "listen", "synced", "link_bytes_received"} {
		if _, ok := st[k]; !ok {
			t.Errorf("/status lacks %q: %v", k, st)
		}
	}
	if st["node_id"] != rn.info.ID || st["master"] != true || st["objects"] != 0.0 {
		t.Errorf("/status = %v", st)
	}

	metrics := getBody(t, base+"/metrics")
	for _, name := range []string{"dt_objects ", "dt_link_bytes_received_total", "go_goroutines", "process_resident_memory_bytes"} {
		if !strings.Contains(metrics, name) {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	if !strings.Contains(getBody(t, base+"/debug/pprof/"), "goroutine") {
		t.Error("/debug/pprof/ index lacks profiles")
	}

	// The log holds the started event, as JSON lines with the stable keys.
	waitFor(t, 10*time.Second, func() error {
		for _, line := range strings.Split(rn.stderr.String(), "\n") {
			var rec map[string]any
			if json.Unmarshal([]byte(line), &rec) == nil && rec["msg"] == "Event" && rec["type"] == "started" {
				return nil
			}
		}
		return errors.New("no started event logged")
	})
	rn.stop(t)
	if !strings.Contains(rn.stderr.String(), `"msg":"Node stopped"`) {
		t.Errorf("node did not close cleanly:\n%s", rn.stderr)
	}
}

func TestNodeMasterNeedsMasterKey(t *testing.T) {
	keys := keygen(t)
	if err := os.Remove(filepath.Join(keys, "master.key")); err != nil {
		t.Fatal(err)
	}
	r := run(t, "", "node", "--keys", keys, "--data", t.TempDir(), "--master")
	if r.code != 1 || !strings.Contains(r.stderr, "master.key") {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
}

func TestNodeHeapProfileOnSIGUSR2(t *testing.T) {
	keys := keygen(t)
	profiles := t.TempDir()
	rn := startNodeCmd(t, "--keys", keys, "--data", t.TempDir(), "--local", "--no-sync", "--profile-dir", profiles)
	// The handler is installed before the node reports ready, so the signal cannot kill the test.
	if err := syscall.Kill(os.Getpid(), syscall.SIGUSR2); err != nil {
		t.Fatal(err)
	}
	var path string
	waitFor(t, 20*time.Second, func() error {
		for _, line := range strings.Split(rn.stderr.String(), "\n") {
			if _, after, ok := strings.Cut(line, `msg="Heap profile written" path=`); ok {
				path = after
				return nil
			}
		}
		return errors.New("no heap profile logged")
	})
	if filepath.Dir(path) != profiles || !strings.HasPrefix(filepath.Base(path), "heap-") || filepath.Ext(path) != ".pprof" {
		t.Fatalf("profile path %q", path)
	}
	checkProfile(t, path)
}

// checkProfile checks that path holds a gzipped protobuf profile, the format go tool pprof reads,
// naming the sample types of a heap profile.
func checkProfile(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(bufio.NewReader(f))
	if err != nil {
		t.Fatalf("profile is not gzipped: %v", err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"inuse_space", "alloc_objects"} {
		if !strings.Contains(string(raw), s) {
			t.Errorf("profile lacks %s", s)
		}
	}
}
