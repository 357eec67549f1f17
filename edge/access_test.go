package edge

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dt-cdn/dt/accesslog"
	"github.com/dt-cdn/dt/blobs"
	"github.com/dt-cdn/dt/dt"
	"github.com/dt-cdn/dt/internal/testkit/needs"
	"github.com/dt-cdn/dt/internal/testkit/promtest"
	"github.com/dt-cdn/dt/internal/testkit/testnet"
	"github.com/dt-cdn/dt/internal/testkit/wait"
	"github.com/dt-cdn/dt/nodehost"
	"github.com/dt-cdn/dt/site"
)

// accessEdge is an edge run by Node.Run with an access log, following a master on loopback.
type accessEdge struct {
	node        *Node
	master      *dt.Node
	http, https string
	stop        func() error
	pageSize    int // of the published /index.html
}

func startAccessEdge(t *testing.T, al *accesslog.Config) *accessEdge {
	return startEdgeWith(t, func(c *Config) { c.AccessLog = al }, nil)
}

// startEdgeWith runs an edge configured by mutate, following a master whose message events go
// to messages (nil: dropped).
func startEdgeWith(t *testing.T, mutate func(*Config), messages func(dt.Event)) *accessEdge {
	t.Helper()
	keys, plain := testnet.Keys(t)
	master := testnet.Node(t, testnet.Options{Keys: keys, Master: true, Listen: true})
	if messages == nil {
		testnet.Drain(master)
	} else {
		events := master.Events()
		go func() {
			for ev := range events {
				if ev.Type == dt.EventMessageReceived {
					messages(ev)
				}
			}
		}()
	}
	node := dt.LocalConfig()
	node.Keys, node.DataDir, node.NoSync, node.Peers = plain, t.TempDir(), true, []string{testnet.Addr(master)}
	ready := make(chan nodehost.Ready, 1)
	cfg := Config{Host: nodehost.Config{Node: node, Ready: func(r nodehost.Ready) error { ready <- r; return nil }},
		HTTP: "127.0.0.1:0", HTTPS: "127.0.0.1:0", HeartbeatInterval: time.Second, DrainWait: time.Millisecond}
	mutate(&cfg)
	e, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	ae := &accessEdge{node: e, master: master}
	var stopped bool
	ae.stop = func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		return <-done
	}
	t.Cleanup(func() { ae.stop() })
	select {
	case r := <-ready:
		ae.http, ae.https = r.Serving.HTTP, r.Serving.HTTPS
	case err := <-done:
		t.Fatalf("Run: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("the edge did not report ready")
	}
	return ae
}

// publishCompressible publishes a deploy whose /index.html has a gzip variant, and waits until
// the edge serves it.
func (ae *accessEdge) publishCompressible(t *testing.T) (page []byte, etag string) {
	t.Helper()
	page = bytes.Repeat([]byte("<p>every request a line</p>\n"), 100)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(page)
	zw.Close()
	h, gh := blobs.Sum(page), blobs.Sum(gz.Bytes())
	m := &site.Manifest{Version: site.ManifestVersion, Created: time.Now().UTC().Truncate(time.Second),
		Files: map[string]site.File{"/index.html": {Hash: h, Size: int64(len(page)), Type: "text/html; charset=utf-8",
			Variants: map[string]site.Variant{"gzip": {Hash: gh, Size: int64(gz.Len())}}}}}
	id, err := m.ID()
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := site.EncodeBlob(page)
	zipped, _ := site.EncodeBlob(gz.Bytes())
	body, _ := m.Marshal()
	cur, _ := site.Current{Deploy: id, Time: time.Now()}.Marshal()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := ae.master.PutMany(ctx, []string{site.BlobKey(h), site.BlobKey(gh), site.DeployKey(id), site.CurrentKey},
		[][]byte{raw, zipped, body, cur}); err != nil {
		t.Fatal(err)
	}
	wait.For(t, 20*time.Second, func() error {
		if got := ae.node.Status().Active; got != id {
			return fmt.Errorf("edge serves %v, want %v", got, id)
		}
		return nil
	})
	ae.pageSize = len(page)
	return page, `"` + h.String() + `"`
}

// request is one request of a test and what its log line must say.
type request struct {
	h2                          bool
	path, encoding, ifNoneMatch string
	status                      int
	wantEncoding                string
	wantBytes                   int64
}

// do sends rq with a Referer and User-Agent naming it, and checks the status.
func (ae *accessEdge) do(t *testing.T, rq request, i int) {
	t.Helper()
	url, tr := "http://"+ae.http+rq.path, &http.Transport{DisableCompression: true}
	if rq.h2 {
		url = "https://" + ae.https + rq.path
		tr.TLSClientConfig, tr.ForceAttemptHTTP2 = &tls.Config{InsecureSkipVerify: true}, true
	}
	defer tr.CloseIdleConnections()
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Accept-Encoding", rq.encoding)
	req.Header.Set("Referer", fmt.Sprintf("https://ref.example/%d", i))
	req.Header.Set("User-Agent", fmt.Sprintf("test-agent/%d \"quoted\"", i))
	if rq.ifNoneMatch != "" {
		req.Header.Set("If-None-Match", rq.ifNoneMatch)
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != rq.status {
		t.Fatalf("request %d %+v: status %d", i, rq, resp.StatusCode)
	}
}

// logLines returns the JSON lines of the file at path, once there are n.
func logLines(t *testing.T, path string, n int) []map[string]any {
	t.Helper()
	var lines []map[string]any
	wait.For(t, 10*time.Second, func() error {
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		lines = nil
		for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			if l == "" {
				continue
			}
			var m map[string]any
			if err := json.Unmarshal([]byte(l), &m); err != nil {
				return fmt.Errorf("line %q: %v", l, err)
			}
			lines = append(lines, m)
		}
		if len(lines) != n {
			return fmt.Errorf("%d lines, want %d", len(lines), n)
		}
		return nil
	})
	return lines
}

// TestAccessLogEveryResponse serves 200, 304 and 404, gzip and identity, over HTTP/1.1 and
// HTTP/2 with TLS: each response is one line with its fields right, health probes are not
// logged, a reopen after a rename starts a new file, and stopping the edge loses no line.
func TestAccessLogEveryResponse(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access.log")
	ae := startAccessEdge(t, &accesslog.Config{Path: path})
	page, etag := ae.publishCompressible(t)
	requests := []request{
		{path: "/", encoding: "gzip", status: 200, wantEncoding: "gzip"},
		{path: "/", encoding: "identity", status: 200, wantBytes: int64(len(page))},
		{path: "/", encoding: "identity", ifNoneMatch: etag, status: 304},
		{path: "/missing.png", encoding: "identity", status: 404, wantBytes: int64(len("404 Not Found\n"))},
		{h2: true, path: "/?a=1", encoding: "gzip", status: 200, wantEncoding: "gzip"},
		{h2: true, path: "/", encoding: "identity", ifNoneMatch: etag, status: 304},
		{h2: true, path: "/missing.png", encoding: "identity", status: 404, wantBytes: int64(len("404 Not Found\n"))},
	}
	resp, err := http.Get("http://" + ae.http + HealthPath) // not a response of the site: not logged
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for i, rq := range requests {
		ae.do(t, rq, i)
	}
	lines := logLines(t, path, len(requests))
	for i, rq := range requests {
		checkLine(t, lines[i], rq, i, ae)
	}

	// logrotate: rename, then SIGHUP (Reopen); the next line goes to a new file at the path.
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	ae.node.Reopen()
	ae.do(t, requests[1], len(requests))
	if got := logLines(t, path, 1); got[0]["referer"] != fmt.Sprintf("https://ref.example/%d", len(requests)) {
		t.Errorf("line after the reopen: %v", got[0])
	}
	logLines(t, path+".1", len(requests)) // nothing more in the renamed file

	// A response written just before the edge stops is in the log once Run returns.
	ae.do(t, requests[0], len(requests)+1)
	if err := ae.stop(); err != nil {
		t.Fatal(err)
	}
	logLines(t, path, 2)
}

func checkLine(t *testing.T, line map[string]any, rq request, i int, ae *accessEdge) {
	t.Helper()
	host, proto, tlsv := ae.http, "HTTP/1.1", ""
	if rq.h2 {
		host, proto, tlsv = ae.https, "HTTP/2.0", "1.3"
	}
	want := map[string]any{"site": site.DefaultSite, "host": host, "method": "GET", "path": rq.path,
		"status": float64(rq.status), "protocol": proto, "tls": tlsv, "encoding": rq.wantEncoding,
		"referer": fmt.Sprintf("https://ref.example/%d", i), "user_agent": fmt.Sprintf("test-agent/%d \"quoted\"", i),
		"client": "127.0.0.1"}
	if rq.wantEncoding == "" {
		want["bytes"] = float64(rq.wantBytes)
	}
	for k, v := range want {
		if line[k] != v {
			t.Errorf("request %d %+v: %s = %#v, want %#v", i, rq, k, line[k], v)
		}
	}
	if rq.wantEncoding != "" && (line["bytes"].(float64) <= 0 || line["bytes"].(float64) >= float64(ae.pageSize)) {
		t.Errorf("request %d: %v bytes for the gzip variant", i, line["bytes"])
	}
	if d, _ := line["duration"].(float64); d <= 0 {
		t.Errorf("request %d: duration %v", i, line["duration"])
	}
	if ts, err := time.Parse(time.RFC3339Nano, fmt.Sprint(line["time"])); err != nil || time.Since(ts) > time.Minute {
		t.Errorf("request %d: time %v (%v)", i, line["time"], err)
	}
}

// TestAccessLogFullDisk logs to /dev/full, whose every write fails with ENOSPC as on a full
// disk: every request still succeeds, and the lines are dropped and counted.
func TestAccessLogFullDisk(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		needs.Skipf(t, "needs /dev/full (Linux): %v", err)
	}
	reg := prometheus.NewRegistry()
	ae := startAccessEdge(t, &accesslog.Config{Path: "/dev/full", Registerer: reg})
	ae.publishCompressible(t)
	const n = 10
	for i := range n {
		ae.do(t, request{path: "/", encoding: "identity", status: 200}, i)
	}
	wait.For(t, 10*time.Second, func() error {
		if got := promtest.Value(t, reg, "dt_edge_access_log_dropped_total", "reason=write_failed"); got != n {
			return fmt.Errorf("dt_edge_access_log_dropped_total{reason=write_failed} = %v, want %d", got, n)
		}
		return nil
	})
	if got := promtest.Value(t, reg, "dt_edge_access_log_lines_total"); got != 0 {
		t.Errorf("dt_edge_access_log_lines_total = %v on a full disk", got)
	}
}
