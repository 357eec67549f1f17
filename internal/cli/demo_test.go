package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dt-cdn/dt/internal/testkit/syncbuf"
	"github.com/dt-cdn/dt/web"
)

// TestDemo runs `dt demo` in-process and fetches the example site through the redirector,
// following the redirect to an edge: the bytes are the embedded page's.
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a whole CDN")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &syncbuf.Buffer{}
	errOut := &syncbuf.Buffer{}
	done := make(chan int, 1)
	go func() {
		done <- Run(ctx, []string{"demo"}, &Env{Stdin: strings.NewReader(""), Stdout: out, Stderr: errOut})
	}()
	waitFor(t, 2*time.Minute, func() error {
		if !strings.Contains(out.String(), "Ctrl-C stops the demo.") {
			select {
			case code := <-done:
				t.Fatalf("demo exited with %d:\n%s%s", code, out, errOut)
			default:
			}
			return errorString("demo not up yet:\n" + out.String())
		}
		return nil
	})
	var redirector, dashboard string
	edges := 0
	for _, line := range strings.Split(out.String(), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 2 && f[0] == "redirector:":
			redirector = f[1]
		case len(f) >= 2 && f[0] == "edge:":
			edges++
		case len(f) >= 2 && f[0] == "dashboard:":
			dashboard = f[1]
		}
	}
	if redirector == "" || dashboard == "" || edges != 3 || !strings.Contains(out.String(), "live on 3/3 edges") {
		t.Fatalf("demo output:\n%s", out)
	}
	want, err := demoSite.ReadFile("demosite/index.html")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(redirector + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != string(want) || resp.Request.URL.Host == strings.TrimPrefix(redirector, "http://") {
		t.Fatalf("through the redirector: %d from %s, %d bytes: %.300s", resp.StatusCode, resp.Request.URL, len(body), body)
	}
	// The dashboard lists the three edges.
	waitFor(t, 10*time.Second, func() error {
		resp, err := http.Get(strings.TrimSuffix(dashboard, "/") + "/api/snapshot")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var snap web.Snapshot
		if err := json.NewDecoder(resp.Body).Decode(&snap); err != nil {
			return err
		}
		if len(snap.Edges) != 3 || len(snap.Deploys) != 1 {
			return fmt.Errorf("dashboard: %d edges, %d deploys", len(snap.Edges), len(snap.Deploys))
		}
		return nil
	})
	// The command the demo prints republishes its site unchanged: the same deploy, clean URLs
	// still on (the site's setting, not the command's).
	var siteDir, publishCmd string
	for _, line := range strings.Split(out.String(), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "publishing:" {
			siteDir = f[1]
		}
		if _, after, ok := strings.Cut(line, "publish more with: dt "); ok {
			publishCmd = strings.TrimSuffix(after, ")")
		}
	}
	args := strings.Fields(strings.Replace(publishCmd, "DIR", siteDir, 1))
	r := run(t, "", append(args, "--timeout", "30s")...)
	if r.code != 0 || !strings.Contains(r.stdout, "nothing changed") || !strings.Contains(r.stdout, "--clean-urls=true") {
		t.Fatalf("dt %s: exit %d\n%s%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("demo exit %d:\n%s", code, errOut)
	}
}

type errorString string

func (e errorString) Error() string { return string(e) }
