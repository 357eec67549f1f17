package redirector

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/dt-cdn/dt/dt"
	"github.com/dt-cdn/dt/internal/testkit/mmdb"
	"github.com/dt-cdn/dt/internal/testkit/testnet"
	"github.com/dt-cdn/dt/nodehost"
)

// TestNodeRun runs a redirector through Run with a peer, plain and TLS listeners and a GeoIP
// database: it answers visitors and its admin routes, reloads GeoIP, and once its context is
// cancelled, with the dashboard's live stream open, it returns promptly (the stream does not
// hold the admin listener's shutdown up) with every goroutine it started gone.
func TestNodeRun(t *testing.T) {
	_, plain := testnet.Keys(t)
	peer := testnet.Node(t, testnet.Options{Keys: plain, Listen: true})
	peerEvents := peer.Events() // subscribed here, before the goroutines Run may not leave are counted
	go func() {
		for range peerEvents {
		}
	}()
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	geoPath := mmdb.File(t)
	ncfg := dt.LocalConfig()
	ncfg.Keys, ncfg.DataDir, ncfg.NoSync, ncfg.Peers = plain, t.TempDir(), true, []string{testnet.Addr(peer)}
	ready := make(chan nodehost.Ready, 1)
	r, err := New(Config{
		Host: nodehost.Config{Node: ncfg, Admin: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler),
			Ready: func(r nodehost.Ready) error { ready <- r; return nil }},
		HTTP:  "127.0.0.1:0",
		HTTPS: "127.0.0.1:0",
		GeoIP: geoPath,
		Code:  302,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	var addrs nodehost.Ready
	select {
	case addrs = <-ready:
	case err := <-done:
		t.Fatalf("Run returned before serving: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("not ready")
	}
	if addrs.Serving.HTTP == "" || addrs.Serving.HTTPS == "" || addrs.Admin == "" {
		t.Fatalf("ready with %+v, want every listener", addrs)
	}

	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true},
		DisableKeepAlives: true,
	}}
	defer client.CloseIdleConnections()
	get := func(url string) (int, string) {
		t.Helper()
		resp, err := client.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	// No edge has sent a heartbeat: visitors are told to come back, over either listener.
	for _, url := range []string{"http://" + addrs.Serving.HTTP + "/", "https://" + addrs.Serving.HTTPS + "/"} {
		if code, body := get(url); code != http.StatusServiceUnavailable {
			t.Errorf("GET %s: %d %q, want 503 without edges", url, code, body)
		}
	}
	admin := "http://" + addrs.Admin
	for path, want := range map[string]string{
		"/explain?ip=81.2.69.142": `"client"`,
		"/status":                 `"redirector"`,
		"/":                       `<svg id="map"`,
	} {
		if code, body := get(admin + path); code != http.StatusOK || !strings.Contains(body, want) {
			t.Errorf("GET %s: %d, want 200 with %q in %.300s", path, code, want, body)
		}
	}
	if err := r.Reload(); err != nil {
		t.Errorf("Reload: %v", err)
	}

	// The dashboard's live stream stays open until the dashboard closes; its first event is
	// there at once.
	stream, err := client.Get(admin + "/api/events")
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Body.Close()
	events := bufio.NewReader(stream.Body)
	for {
		line, err := events.ReadString('\n')
		if err != nil {
			t.Fatalf("live stream: %v", err)
		}
		if strings.HasPrefix(line, "data:") {
			break
		}
	}

	start := time.Now()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(DefaultShutdownTimeout + 10*time.Second):
		t.Fatal("Run did not return after cancel")
	}
	// The admin listener waits up to its grace for requests in flight: a stream still open
	// would have taken all of it.
	if took := time.Since(start); took >= DefaultShutdownTimeout {
		t.Errorf("Run took %v to stop: the open stream held the shutdown up", took)
	}
	if _, err := io.Copy(io.Discard, stream.Body); err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Logf("stream: %v", err)
	}
	if err := r.Reload(); err != nil {
		t.Errorf("Reload after Run: %v, want nil (nothing to reload)", err)
	}
}

// TestNewChecksConfig: New refuses a config it cannot run with and names every problem.
func TestNewChecksConfig(t *testing.T) {
	_, err := New(Config{Code: 303, Domains: []string{"example.com"}})
	if !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("New: %v, want ErrInvalidConfig", err)
	}
	for _, want := range []string{"DataDir", "HTTP or HTTPS", "Domains need HTTPS", "303"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
}

// TestRunFailsCleanly: a GeoIP file that cannot be read fails Run, which closes the node it
// opened (the data directory opens again at once) and leaves no goroutine behind.
func TestRunFailsCleanly(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	_, plain := testnet.Keys(t)
	ncfg := dt.LocalConfig()
	ncfg.Keys, ncfg.DataDir, ncfg.NoSync = plain, t.TempDir(), true
	r, err := New(Config{Host: nodehost.Config{Node: ncfg, Admin: "127.0.0.1:0"}, HTTP: "127.0.0.1:0", GeoIP: filepath.Join(t.TempDir(), "missing.mmdb")})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Run(context.Background()); err == nil {
		t.Fatal("Run with a missing GeoIP file succeeded")
	}
	n, err := dt.Open(ncfg)
	if err != nil {
		t.Fatalf("the data directory after a failed Run: %v", err)
	}
	n.Close()
}
