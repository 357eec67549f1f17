package nodehost

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/dt-cdn/dt/dt"
	"github.com/dt-cdn/dt/internal/testkit/syncbuf"
	"github.com/dt-cdn/dt/internal/testkit/testnet"
	"github.com/dt-cdn/dt/internal/testkit/wait"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// recorder is an event consumer that keeps what it got.
type recorder struct {
	mu     sync.Mutex
	events []dt.Event
}

func (r *recorder) HandleEvent(ev dt.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, ev)
}

func (r *recorder) keys() (first dt.EventType, added []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, ev := range r.events {
		if i == 0 {
			first = ev.Type
		}
		if ev.Type == dt.EventObjectAdded {
			added = append(added, ev.Key)
		}
	}
	return first, added
}

func nodeConfig(t *testing.T, keys dt.Keys, peers []string) dt.Config {
	cfg := dt.LocalConfig()
	cfg.Keys, cfg.DataDir, cfg.NoSync, cfg.Peers = keys, t.TempDir(), true, peers
	return cfg
}

// TestHostRunsRole runs a host with an admin listener and a role: a consumer subscribed after
// Open gets every event from EventStarted on, in order; readiness names the resolved admin
// address and the role's listeners; /status carries the role's part, /metrics the node's
// metrics and /guard the guard's blocks; the role's routes answer; a cancelled context stops everything, and Run returns.
func TestHostRunsRole(t *testing.T) {
	keys, plain := testnet.Keys(t)
	hub := testnet.Node(t, testnet.Options{Keys: plain, Listen: true})
	testnet.Drain(hub)
	master := testnet.Node(t, testnet.Options{Keys: keys, Master: true, Peers: []string{testnet.Addr(hub)}})
	testnet.Drain(master)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	key, err := master.AddObject(ctx, map[string]string{"hello": "world"})
	if err != nil {
		t.Fatal(err)
	}

	logs := &syncbuf.Buffer{}
	readyc := make(chan Ready, 1)
	h, err := Open(Config{
		Node:    nodeConfig(t, plain, []string{testnet.Addr(hub)}),
		Admin:   "127.0.0.1:0",
		Logger:  newTextLogger(logs),
		Build:   map[string]string{"version": "test"},
		Version: "test",
		Ready:   func(r Ready) error { readyc <- r; return nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	if err := h.Subscribe(rec); err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- h.Run(runCtx, Role{
			Routes: func(mux *http.ServeMux) {
				mux.HandleFunc("GET /role", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "role") })
			},
			Status: func(st *Status) { st.Edge = map[string]int{"answer": 42} },
			Serve: func(ctx context.Context, ready func(Serving) error) error {
				if err := ready(Serving{HTTP: "127.0.0.1:1"}); err != nil {
					return err
				}
				<-ctx.Done()
				return nil
			},
		})
	}()
	var r Ready
	select {
	case r = <-readyc:
	case err := <-done:
		t.Fatalf("Run returned before ready: %v", err)
	}
	if r.ID != h.Node().ID() || r.Admin == "" || strings.HasSuffix(r.Admin, ":0") || r.Serving.HTTP != "127.0.0.1:1" {
		t.Fatalf("ready: %+v", r)
	}
	if err := h.Subscribe(&recorder{}); !errors.Is(err, ErrStarted) {
		t.Errorf("Subscribe after Run: %v, want ErrStarted", err)
	}
	wait.For(t, 10*time.Second, func() error {
		first, added := rec.keys()
		if first != dt.EventStarted || len(added) != 1 || added[0] != key {
			return fmt.Errorf("first event %v, added %v; want started, then %s", first, added, key)
		}
		return nil
	})

	var st map[string]any
	if body := get(t, "http://"+r.Admin+"/status"); json.Unmarshal([]byte(body), &st) != nil {
		t.Fatalf("status: %s", body)
	}
	if st["node_id"] != r.ID.String() || st["edge"] == nil || st["build"] == nil || st["redirector"] != nil {
		t.Errorf("status: %v", st)
	}
	var blocks struct {
		Blocks []any `json:"blocks"`
	}
	if body := get(t, "http://"+r.Admin+"/guard"); json.Unmarshal([]byte(body), &blocks) != nil || blocks.Blocks == nil || len(blocks.Blocks) != 0 {
		t.Errorf("GET /guard: %q", body)
	}
	if body := get(t, "http://"+r.Admin+"/role"); body != "role" {
		t.Errorf("GET /role: %q", body)
	}
	if body := get(t, "http://"+r.Admin+"/metrics"); !strings.Contains(body, "go_goroutines") || !strings.Contains(body, "dt_") {
		t.Errorf("metrics lack the Go collector or the node's metrics")
	}

	stop()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
	if _, err := http.Get("http://" + r.Admin + "/status"); err == nil {
		t.Error("the admin listener still answers after Run returned")
	}
	if !strings.Contains(logs.String(), "type=object_added key="+key) {
		t.Errorf("the event was not logged:\n%s", logs)
	}
	if err := h.Run(context.Background(), Role{}); !errors.Is(err, ErrStarted) {
		t.Errorf("second Run: %v, want ErrStarted", err)
	}
}

// TestHostRoleFails: a role that fails before its context ends, or a Ready that cannot report,
// stops the host with its error; a host closed without running releases the node's data
// directory.
func TestHostRoleFails(t *testing.T) {
	_, plain := testnet.Keys(t)
	cfg := nodeConfig(t, plain, nil)
	h, err := Open(Config{Node: cfg})
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	err = h.Run(context.Background(), Role{Serve: func(context.Context, func(Serving) error) error { return boom }})
	if !errors.Is(err, boom) {
		t.Fatalf("Run: %v, want the role's error", err)
	}
	notReady := errors.New("cannot report")
	h, err = Open(Config{Node: cfg, Ready: func(Ready) error { return notReady }})
	if err != nil {
		t.Fatalf("reopen after Run: %v", err)
	}
	if err := h.Run(context.Background(), Role{}); !errors.Is(err, notReady) {
		t.Fatalf("Run with a failing Ready: %v, want its error", err)
	}
	h, err = Open(Config{Node: cfg})
	if err != nil {
		t.Fatalf("reopen after a failed Ready: %v", err)
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if h, err = Open(Config{Node: cfg}); err != nil {
		t.Fatalf("reopen after Close: %v", err)
	}
	h.Close()
}

func TestTruncate(t *testing.T) {
	for _, tt := range []struct {
		in   string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"exactly", 7, "exactly"},
		{"abcdef", 3, "abc…"},
		{"ééé", 3, "é…"}, // never cuts a two-byte character in half
	} {
		if got := truncate(tt.in, tt.n); got != tt.want {
			t.Errorf("truncate(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
		}
	}
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func newTextLogger(w io.Writer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }
