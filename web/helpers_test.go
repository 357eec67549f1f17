package web

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/dt-cdn/dt/dt"
	"github.com/dt-cdn/dt/edgeset"
	"github.com/dt-cdn/dt/heartbeat"
	"github.com/dt-cdn/dt/internal/testkit/testnet"
	"github.com/dt-cdn/dt/site"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testRedirector is a real edgeset.Set, the redirector's view of the edges, on a lone dt node. Tests feed it the events a
// network would bring: heartbeats (as messages from edge nodes) and the current deploy pointer.
type testRedirector struct {
	t   *testing.T
	svc *edgeset.Set
	seq atomic.Uint64
}

func newTestRedirector(t *testing.T, beat time.Duration) *testRedirector {
	t.Helper()
	_, plain := testnet.Keys(t)
	n := testnet.Node(t, testnet.Options{Keys: plain, LazyBodies: true})
	testnet.Drain(n)
	svc, err := edgeset.New(edgeset.Config{Node: n, HeartbeatInterval: beat})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = svc.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return &testRedirector{t: t, svc: svc}
}

// edgeID returns a node id for edge number i.
func edgeID(i byte) dt.NodeID {
	var id dt.NodeID
	id[0], id[15] = 0xed, i
	return id
}

// beat delivers one heartbeat from edge i, as the node's event loop would.
func (r *testRedirector) beat(i byte, h heartbeat.Heartbeat) {
	r.t.Helper()
	h.Seq = r.seq.Add(1)
	h.Time = time.Now().UnixMilli()
	b, err := heartbeat.Encode(h)
	if err != nil {
		r.t.Fatal(err)
	}
	r.svc.HandleEvent(dt.Event{Type: dt.EventMessageReceived, From: edgeID(i), Object: b})
}

// setCurrent delivers a new current deploy pointer.
func (r *testRedirector) setCurrent(id site.DeployID) {
	r.t.Helper()
	b, err := site.Current{Deploy: id, Time: time.Now()}.Marshal()
	if err != nil {
		r.t.Fatal(err)
	}
	r.svc.HandleEvent(dt.Event{Type: dt.EventObjectAdded, Key: site.CurrentKey, Object: b})
}

// closedURL returns the URL of a loopback port nothing listens on, so probes of it fail fast.
func closedURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

// stream reads a live stream of Server-Sent Events.
type stream struct {
	resp *http.Response
	r    *bufio.Reader
}

func openStream(t *testing.T, url string) *stream {
	t.Helper()
	resp, err := http.Get(url + "/api/events")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("GET /api/events: %s, %q", resp.Status, resp.Header.Get("Content-Type"))
	}
	return &stream{resp: resp, r: bufio.NewReader(resp.Body)}
}

// next returns the next event's name and data, skipping fields it does not need (retry). An
// event ends at an empty line (HTML Living Standard, 9.2.6 Interpreting an event stream).
func (s *stream) next() (name string, data string, err error) {
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			return "", "", err
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "" && data != "":
			return name, data, nil
		case strings.HasPrefix(line, "event: "):
			name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			data += strings.TrimPrefix(line, "data: ")
		}
	}
}

// snapshot returns the next snapshot event, within timeout.
func (s *stream) snapshot(t *testing.T, timeout time.Duration) Snapshot {
	t.Helper()
	type result struct {
		snap Snapshot
		err  error
	}
	got := make(chan result, 1)
	go func() {
		name, data, err := s.next()
		if err == nil && name != "snapshot" {
			err = fmt.Errorf("event %q", name)
		}
		var snap Snapshot
		if err == nil {
			err = json.Unmarshal([]byte(data), &snap)
		}
		got <- result{snap, err}
	}()
	select {
	case r := <-got:
		if r.err != nil {
			t.Fatalf("live stream: %v", r.err)
		}
		return r.snap
	case <-time.After(timeout):
		s.resp.Body.Close() // ends the reader
		<-got
		t.Fatalf("no snapshot within %s", timeout)
		return Snapshot{}
	}
}

// getJSON fetches url and decodes its JSON body into v.
func getJSON(t *testing.T, url string, v any) *http.Response {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v:\n%s", url, err, b)
	}
	return resp
}

// edgeByNode finds an edge of a snapshot.
func edgeByNode(s Snapshot, id dt.NodeID) (Edge, bool) {
	for _, e := range s.Edges {
		if e.Node == id.String() {
			return e, true
		}
	}
	return Edge{}, false
}
