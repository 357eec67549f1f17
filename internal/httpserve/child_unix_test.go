//go:build unix

package httpserve

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"
)

// Tests that need a process of their own (a lower descriptor limit, memory figures without the
// client's side) run this test binary again as a child: the child serves an edge and an admin
// endpoint on loopback, reports their addresses on a line "ADDRS {json}", and runs until its
// standard input closes.

// childAddrs is what a child reports on its ADDRS line.
type childAddrs struct {
	Edge, DT, Admin string
}

// startChild runs the test binary's test run (a child, which skips unless env is set) with env
// added to its environment, and returns the addresses it reported. stop closes the child's
// standard input and waits up to 30 s for it to exit, failing the test if it does not or
// fails; it runs at the latest when the test ends.
func startChild(t *testing.T, run, env string) (addrs childAddrs, stop func()) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+run+"$", "-test.v")
	cmd.Env = append(os.Environ(), env)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	out := bufio.NewScanner(stdout)
	for out.Scan() {
		if line, ok := bytes.CutPrefix(out.Bytes(), []byte("ADDRS ")); ok {
			if err := json.Unmarshal(line, &addrs); err != nil {
				t.Error(err)
			}
			break
		}
	}
	go func() {
		io.Copy(io.Discard, stdout)
		exited <- cmd.Wait()
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			stdin.Close()
			select {
			case err := <-exited:
				if err != nil {
					t.Errorf("child: %v", err)
				}
			case <-time.After(30 * time.Second):
				cmd.Process.Kill()
				t.Error("the child did not exit")
			}
		})
	}
	t.Cleanup(stop)
	if addrs.Edge == "" {
		t.Fatal("the child reported no addresses")
	}
	return addrs, stop
}

// serveChild is a child's part: it serves s on 127.0.0.1 (over TLS with tc, if not nil) and
// report's answers as JSON on an admin endpoint, prints the ADDRS line (dtAddr is the node's,
// if it runs one) and serves until its standard input closes.
func serveChild(t *testing.T, s *siteServer, tc *tls.Config, dtAddr string, report func() any) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	adminLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	admin := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(report())
	})}
	go admin.Serve(adminLn)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, ln, tc) }()
	a, _ := json.Marshal(childAddrs{Edge: ln.Addr().String(), DT: dtAddr, Admin: adminLn.Addr().String()})
	fmt.Printf("ADDRS %s\n", a)
	io.Copy(io.Discard, os.Stdin)
	cancel()
	admin.Close()
	if err := <-served; err != nil {
		t.Error(err)
	}
}

// childReport decodes the child's admin endpoint's answer into v.
func childReport(t *testing.T, addrs childAddrs, v any) {
	t.Helper()
	resp, err := http.Get("http://" + addrs.Admin + "/")
	if err != nil {
		t.Fatalf("the child's admin endpoint: %v", err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}
