package cli

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dt-cdn/dt/internal/testkit/syncbuf"
)

// readReadyFile waits for a ready file and decodes it.
func readReadyFile(t *testing.T, path string, done <-chan int, stderr *syncbuf.Buffer) NodeInfo {
	t.Helper()
	var info NodeInfo
	waitFor(t, 30*time.Second, func() error {
		select {
		case code := <-done:
			t.Fatalf("exited with %d before serving:\n%s", code, stderr)
		default:
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return json.Unmarshal(b, &info)
	})
	return info
}

// TestReadyFile starts `dt node`, `dt edge` and `dt redirector` with every listener on port 0
// and --ready-file, and reaches each listener at the address the file names; the file is gone
// after a clean exit.
func TestReadyFile(t *testing.T) {
	keys := keygen(t)
	peer := startPeer(t, keys)
	cases := []struct {
		cmd  string
		args []string
		// visitor is the path fetched on the --http listener, and the status it answers with
		// no deploy published.
		visitor string
		status  int
	}{
		{cmd: "node"},
		{cmd: "edge", args: []string{"--http", "127.0.0.1:0", "--https", "127.0.0.1:0", "--drain-wait", "1ms"}, visitor: "/.well-known/dt/health", status: http.StatusServiceUnavailable},
		{cmd: "redirector", args: []string{"--http", "127.0.0.1:0", "--https", "127.0.0.1:0"}, visitor: "/", status: http.StatusServiceUnavailable},
	}
	for _, c := range cases {
		t.Run(c.cmd, func(t *testing.T) {
			ready := filepath.Join(t.TempDir(), "ready.json")
			args := append([]string{c.cmd, "--keys", keys, "--data", t.TempDir(), "--peer", peer.addr, "--local",
				"--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--ready-file", ready}, c.args...)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			stderr := &syncbuf.Buffer{}
			done := make(chan int, 1)
			go func() {
				done <- Run(ctx, args, &Env{Stdin: strings.NewReader(""), Stdout: io.Discard, Stderr: stderr})
			}()
			info := readReadyFile(t, ready, done, stderr)

			if info.PID != os.Getpid() || len(info.Listen) != 1 || strings.HasSuffix(info.Listen[0], ":0") || strings.HasSuffix(info.Admin, ":0") {
				t.Fatalf("ready file: %+v", info)
			}
			var st nodeStatus
			getJSON(t, "http://"+info.Admin+"/status", &st)
			if st.NodeID.String() != info.ID {
				t.Errorf("admin at %s reports node %s, ready file %s", info.Admin, st.NodeID, info.ID)
			}
			if c.visitor != "" {
				if info.HTTP == "" || strings.HasSuffix(info.HTTP, ":0") {
					t.Fatalf("ready file names no resolved HTTP listener: %+v", info)
				}
				resp, err := http.Get("http://" + info.HTTP + c.visitor)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != c.status {
					t.Errorf("GET %s%s: %s, want %d", info.HTTP, c.visitor, resp.Status, c.status)
				}
			}
			if c.visitor != "" {
				// HTTPS, with the locally generated certificate, speaks HTTP/2.
				if info.HTTPS == "" || strings.HasSuffix(info.HTTPS, ":0") {
					t.Fatalf("ready file names no resolved HTTPS listener: %+v", info)
				}
				var p http.Protocols
				p.SetHTTP2(true)
				client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, Protocols: &p}}
				resp, err := client.Get("https://" + info.HTTPS + c.visitor)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				client.CloseIdleConnections()
				if resp.StatusCode != c.status || resp.ProtoMajor != 2 {
					t.Errorf("GET https://%s%s: %s %s, want %d over HTTP/2", info.HTTPS, c.visitor, resp.Proto, resp.Status, c.status)
				}
			}
			if c.cmd == "edge" && (info.PublicURL != "https://"+info.HTTPS || strings.HasSuffix(info.HTTPS, ":0")) {
				t.Errorf("edge public URL %q, HTTPS listener %q", info.PublicURL, info.HTTPS)
			}

			cancel()
			if code := <-done; code != 0 {
				t.Fatalf("exit %d:\n%s", code, stderr)
			}
			if _, err := os.Stat(ready); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("ready file left after a clean exit: %v", err)
			}
		})
	}
}
