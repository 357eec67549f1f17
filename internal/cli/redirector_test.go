package cli

import (
	"bufio"
	"context"
	"encoding/json"
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
	"github.com/dt-cdn/dt/web"
)

// TestRedirectorDashboard runs `dt redirector` and `dt edge` against a network, publishes a site,
// and reads the redirector's admin listener: the dashboard at /, its snapshot with the edge and
// the deploy, and /status and /explain beside it. A live stream open when the redirector stops
// does not hold up its shutdown.
func TestRedirectorDashboard(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a redirector and an edge")
	}
	keys := keygen(t)
	peer := startPeer(t, keys)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	admin := "http://" + freeAddr(t)
	visitors := freeAddr(t)
	var errOut syncbuf.Buffer
	redirectorDone, edgeDone := make(chan int, 1), make(chan int, 1)
	go func() {
		redirectorDone <- Run(ctx, []string{"redirector", "--keys", keys, "--data", t.TempDir(), "--peer", peer.addr, "--local",
			"--http", visitors, "--admin", strings.TrimPrefix(admin, "http://"), "--heartbeat-interval", "200ms"},
			&Env{Stdin: strings.NewReader(""), Stdout: io.Discard, Stderr: &errOut})
	}()
	go func() {
		edgeDone <- Run(ctx, []string{"edge", "--keys", keys, "--data", t.TempDir(), "--peer", peer.addr, "--local",
			"--http", freeAddr(t), "--location", "52.37,4.90", "--name", "ams-1", "--heartbeat-interval", "200ms", "--drain-wait", "200ms"},
			&Env{Stdin: strings.NewReader(""), Stdout: io.Discard, Stderr: &errOut})
	}()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte("<h1>dashboard</h1>"), 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, func() error {
		if r := run(t, "", "publish", "--keys", keys, "--peer", peer.addr, "--timeout", "5s", dir); r.code != 0 {
			return fmt.Errorf("publish exit %d: %s%s", r.code, r.stdout, r.stderr)
		}
		return nil
	})

	var snap web.Snapshot
	waitFor(t, 10*time.Second, func() error {
		snap = web.Snapshot{}
		resp, err := http.Get(admin + "/api/snapshot")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if err := json.NewDecoder(resp.Body).Decode(&snap); err != nil {
			return fmt.Errorf("snapshot: %s: %w", resp.Status, err)
		}
		switch {
		case len(snap.Edges) != 1 || snap.Edges[0].State != "alive" || !snap.Edges[0].Current || !snap.Edges[0].Synced:
			return fmt.Errorf("edges: %+v", snap.Edges)
		case len(snap.Deploys) != 1 || !snap.Deploys[0].Current || !snap.Deploys[0].Read || snap.Deploys[0].Files != 1:
			return fmt.Errorf("deploys: %+v", snap.Deploys)
		}
		return nil
	})
	if l := snap.Edges[0].Location; l == nil || l.Lat != 52.37 || l.Lon != 4.9 {
		t.Errorf("edge location %+v", l)
	}
	if name := snap.Edges[0].Name; name != "ams-1" {
		t.Errorf("edge name %q, want the --name given", name)
	}
	for path, want := range map[string]string{
		"/":                     `<svg id="map"`,
		"/status":               `"redirector"`,
		"/explain?ip=192.0.2.1": snap.Edges[0].Node,
	} {
		resp, err := http.Get(admin + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), want) {
			t.Errorf("GET %s: %s, want %q in:\n%.400s", path, resp.Status, want, body)
		}
	}

	// A visitor is redirected, and /metrics counts it, beside the edges by state.
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	redirect, err := noFollow.Get("http://" + visitors + "/")
	if err != nil {
		t.Fatal(err)
	}
	redirect.Body.Close()
	if redirect.StatusCode != http.StatusMovedPermanently {
		t.Fatalf("visitor: %s", redirect.Status)
	}
	metrics, err := http.Get(admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(metrics.Body)
	metrics.Body.Close()
	for _, want := range []string{
		`dt_redirector_redirects_total{code="301",edge="` + snap.Edges[0].Node + `"} 1`,
		`dt_redirector_edges{state="alive"} 1`,
		"dt_redirector_geo_misses_total",
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	// Stop with a live stream open: the stream ends and the command exits, promptly.
	resp, err := http.Get(admin + "/api/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if _, err := bufio.NewReader(resp.Body).ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	cancel()
	select {
	case code := <-redirectorDone:
		if code != 0 {
			t.Fatalf("redirector exit %d:\n%s", code, errOut.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the redirector did not stop")
	}
	t.Logf("the redirector stopped %s after the cancel, with a dashboard open", time.Since(stopped).Round(time.Millisecond))
	if n, err := io.Copy(io.Discard, resp.Body); err != nil {
		t.Errorf("the stream ended with %v after %d bytes", err, n)
	}
	<-edgeDone
}

// TestRedirectorConnCaps: the redirector's visitor listener is capped per address, counts the
// connections it refuses in /metrics, and serves other addresses meanwhile.
func TestRedirectorConnCaps(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a redirector")
	}
	keys := keygen(t)
	peer := startPeer(t, keys)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	admin := "http://" + freeAddr(t)
	visitors := freeAddr(t)
	var errOut syncbuf.Buffer
	done := make(chan int, 1)
	go func() {
		done <- Run(ctx, []string{"redirector", "--keys", keys, "--data", t.TempDir(), "--peer", peer.addr, "--local",
			"--http", visitors, "--admin", strings.TrimPrefix(admin, "http://"), "--max-conns-per-ip", "3"},
			&Env{Stdin: strings.NewReader(""), Stdout: io.Discard, Stderr: &errOut})
	}()
	waitFor(t, 30*time.Second, func() error {
		resp, err := http.Get("http://" + visitors + "/")
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	})
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}, Timeout: 5 * time.Second}
	refused := 0
	for range 5 {
		c, err := d.Dial("tcp", visitors)
		if err != nil {
			refused++ // reset before connect returned
			continue
		}
		defer c.Close()
		c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		if _, err := c.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
			refused++
		}
	}
	if refused != 2 {
		t.Errorf("%d of 5 connections from one address refused, want 2", refused)
	}
	resp, err := http.Get("http://" + visitors + "/")
	if err != nil {
		t.Fatalf("a visitor from another address: %v", err)
	}
	resp.Body.Close()
	metrics, err := http.Get(admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(metrics.Body)
	metrics.Body.Close()
	if want := `dt_redirector_conns_refused_total{reason="per_ip"} 2`; !strings.Contains(string(body), want) {
		t.Errorf("/metrics lacks %s", want)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("redirector exit %d:\n%s", code, errOut.String())
	}
}
