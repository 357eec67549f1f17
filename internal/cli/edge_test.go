package cli

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dt-cdn/dt/internal/testkit/syncbuf"
)

// freeAddr returns a loopback address with a port free at the time of the call.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestEdgeCommand runs `dt edge` (HTTP and HTTPS with a local certificate) against a network,
// publishes a site with `dt publish`, and fetches it from the edge over both; on cancel (as
// SIGTERM) the edge drains: its health endpoint answers 503 before the listeners close.
func TestEdgeCommand(t *testing.T) {
	keys := keygen(t)
	peer := startPeer(t, keys)
	httpAddr, httpsAddr := freeAddr(t), freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errOut := &syncbuf.Buffer{}
	done := make(chan int, 1)
	go func() {
		done <- Run(ctx, []string{"edge", "--keys", keys, "--data", t.TempDir(), "--peer", peer.addr, "--local",
			"--http", httpAddr, "--https", httpsAddr, "--location", "52.37,4.90", "--heartbeat-interval", "200ms", "--drain-wait", "1s"},
			&Env{Stdin: strings.NewReader(""), Stdout: io.Discard, Stderr: errOut})
	}()

	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte("<h1>edge</h1>"), 0o644); err != nil {
		t.Fatal(err)
	}
	var r result
	waitFor(t, 30*time.Second, func() error {
		r = run(t, "", "publish", "--keys", keys, "--peer", peer.addr, "--timeout", "5s", dir)
		if r.code != 0 {
			return fmt.Errorf("publish exit %d: %s%s", r.code, r.stdout, r.stderr)
		}
		return nil
	})
	if !strings.Contains(r.stdout, "live on 1/1 edges") {
		t.Fatalf("publish output: %s", r.stdout)
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, ForceAttemptHTTP2: true}}
	for _, url := range []string{"http://" + httpAddr + "/", "https://" + httpsAddr + "/"} {
		resp, err := client.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != "<h1>edge</h1>" {
			t.Fatalf("GET %s: %d %q", url, resp.StatusCode, body)
		}
		if strings.HasPrefix(url, "https") && resp.ProtoMajor != 2 {
			t.Fatalf("HTTPS served %s, want HTTP/2", resp.Proto)
		}
	}

	cancel()
	waitFor(t, 5*time.Second, func() error {
		resp, err := client.Get("http://" + httpAddr + "/.well-known/dt/health")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable {
			return errors.New("health still 200 while draining")
		}
		return nil
	})
	if code := <-done; code != 0 {
		t.Fatalf("dt edge exit %d:\n%s", code, errOut)
	}
}

// TestAdminPortTaken: an edge or redirector whose admin listener cannot bind fails with that
// error and exits, rather than waiting forever on its own event hook.
func TestAdminPortTaken(t *testing.T) {
	keys := keygen(t)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	for _, cmd := range []string{"edge", "redirector"} {
		began := time.Now()
		r := run(t, "", cmd, "--keys", keys, "--data", t.TempDir(), "--local", "--no-sync", "--listen", "127.0.0.1:0",
			"--http", "127.0.0.1:0", "--admin", taken.Addr().String())
		if r.code == 0 || !strings.Contains(r.stderr, "admin listener") {
			t.Errorf("dt %s with its admin port taken: exit %d after %s\n%s", cmd, r.code, time.Since(began).Round(time.Millisecond), r.stderr)
		}
	}
}
