package cli

import (
	"context"
	"fmt"
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

// TestEdgeAccessLogAndSIGHUP runs `dt edge --access-log FILE` in the Combined Log Format with
// truncated addresses: a request is a line; after the file is renamed, SIGHUP makes the edge
// write the next line to a new file, as logrotate needs, and the edge keeps running.
func TestEdgeAccessLogAndSIGHUP(t *testing.T) {
	keys := keygen(t)
	peer := startPeer(t, keys)
	httpAddr, httpsAddr := freeAddr(t), freeAddr(t)
	logPath := filepath.Join(t.TempDir(), "access.log")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errOut := &syncbuf.Buffer{}
	done := make(chan int, 1)
	go func() {
		done <- Run(ctx, []string{"edge", "--keys", keys, "--data", t.TempDir(), "--peer", peer.addr, "--local",
			"--http", httpAddr, "--https", httpsAddr, "--location", "52.37,4.90", "--heartbeat-interval", "200ms", "--drain-wait", "10ms",
			"--access-log", logPath, "--access-log-format", "combined", "--access-log-truncate-ip"},
			&Env{Stdin: strings.NewReader(""), Stdout: io.Discard, Stderr: errOut})
	}()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte("<h1>logged</h1>"), 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, func() error {
		if r := run(t, "", "publish", "--keys", keys, "--peer", peer.addr, "--timeout", "5s", dir); r.code != 0 {
			return fmt.Errorf("publish exit %d: %s%s", r.code, r.stdout, r.stderr)
		}
		return nil
	})
	get := func(path string) {
		t.Helper()
		resp, err := http.Get("http://" + httpAddr + path)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	lineIn := func(file, path string) {
		t.Helper()
		waitFor(t, 10*time.Second, func() error {
			b, err := os.ReadFile(file)
			if err != nil {
				return err
			}
			want := `127.0.0.0 - - [`
			for _, l := range strings.Split(string(b), "\n") {
				if strings.HasPrefix(l, want) && strings.Contains(l, `"GET `+path+` HTTP/1.1" 200 `) {
					return nil
				}
			}
			return fmt.Errorf("no line for %s in %s: %q", path, file, b)
		})
	}
	get("/?first")
	lineIn(logPath, "/?first")
	if err := os.Rename(logPath, logPath+".1"); err != nil {
		t.Fatal(err)
	}
	// The handler is installed before the edge serves, so the signal cannot stop the test.
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, func() error { // the reopen is asynchronous: poll with requests
		get("/?second")
		_, err := os.Stat(logPath)
		return err
	})
	// A "/?second" may have been logged before the signal reached the edge, and so belong in
	// the old file; a request sent once the new file exists is logged after the reopen.
	get("/?third")
	lineIn(logPath, "/?third")
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("dt edge exit %d:\n%s", code, errOut)
	}
}

func TestEdgeAccessLogFlagErrors(t *testing.T) {
	keys := keygen(t)
	for _, args := range [][]string{
		{"--access-log", "x", "--access-log-format", "xml"},
		{"--access-log", "x", "--access-log-max-size", "-1"},
		{"--access-log", "x", "--access-log-keep", "0"},
	} {
		r := run(t, "", append([]string{"edge", "--keys", keys, "--data", t.TempDir(), "--http", "127.0.0.1:0"}, args...)...)
		if r.code != 2 || !strings.Contains(r.stderr, "--access-log") {
			t.Errorf("dt edge %q: exit %d, %s", args, r.code, r.stderr)
		}
	}
}

// TestEdgeUnitAccessLog: the packaged edge keeps an access log, rotated, in the directory
// systemd makes writable for it (ProtectSystem=strict leaves the rest read-only), and reloads
// with SIGHUP, which reopens the log rather than stopping the edge.
func TestEdgeUnitAccessLog(t *testing.T) {
	s := unitSettings(t, filepath.Join(unitDir, "dt-edge.service"))
	exec := strings.Fields(strings.Join(s["ExecStart"], " "))
	arg := func(flag string) string {
		for i, a := range exec {
			if a == flag && i+1 < len(exec) {
				return exec[i+1]
			}
		}
		return ""
	}
	logs := s["LogsDirectory"]
	if len(logs) != 1 || filepath.Dir(arg("--access-log")) != "/var/log/"+logs[0] {
		t.Errorf("--access-log %q is not in LogsDirectory=%v", arg("--access-log"), logs)
	}
	if arg("--access-log-max-size") == "" || arg("--access-log-keep") == "" {
		t.Error("the unit's access log is not rotated (--access-log-max-size, --access-log-keep)")
	}
	if got := s["ExecReload"]; len(got) != 1 || !strings.Contains(got[0], "-HUP $MAINPID") {
		t.Errorf("ExecReload=%v, want SIGHUP to the edge", got)
	}
}
