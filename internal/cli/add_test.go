package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dt-cdn/dt/dt"
)

// peerNode is a plain dt node listening on loopback, recording its events: the running node the
// client commands talk to.
type peerNode struct {
	*dt.Node
	addr string

	mu     sync.Mutex
	events []dt.Event
}

func startPeer(t *testing.T, keysDir string) *peerNode {
	t.Helper()
	keys, err := dt.LoadKeys(keysDir)
	if err != nil {
		t.Fatal(err)
	}
	keys.Master = nil
	cfg := dt.LocalConfig()
	cfg.Keys, cfg.DataDir, cfg.Listen, cfg.NoSync = keys, t.TempDir(), []string{"127.0.0.1:0"}, true
	n, err := dt.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	p := &peerNode{Node: n, addr: n.Addrs()[0].String()}
	var wg sync.WaitGroup
	wg.Go(func() {
		for ev := range n.Events() {
			p.mu.Lock()
			p.events = append(p.events, ev)
			p.mu.Unlock()
		}
	})
	t.Cleanup(func() {
		n.Close()
		wg.Wait()
	})
	return p
}

func (p *peerNode) eventsOf(typ dt.EventType) []dt.Event {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []dt.Event
	for _, ev := range p.events {
		if ev.Type == typ {
			out = append(out, ev)
		}
	}
	return out
}

func TestAddRemoveSend(t *testing.T) {
	keys := keygen(t)
	peer := startPeer(t, keys)
	file := filepath.Join(t.TempDir(), "obj.json")
	if err := os.WriteFile(file, []byte("{\"name\": \"dt\",\n \"n\": 1}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	canonical := `{"n":1,"name":"dt"}`
	wantID := dt.ObjectID([]byte(canonical))

	r := run(t, "", "add", "--keys", keys, "--peer", peer.addr, "--timeout", "60s", file)
	if r.code != 0 {
		t.Fatalf("add: exit %d: %s", r.code, r.stderr)
	}
	if got := strings.TrimSpace(r.stdout); got != wantID {
		t.Fatalf("add printed %q, want the id of the canonical JSON %s", got, wantID)
	}
	// dt add returns once the peer applied the object: no waiting needed.
	body, err := peer.Get(context.Background(), wantID)
	if err != nil || string(body) != canonical {
		t.Fatalf("peer holds %s, %v", body, err)
	}

	// The same object from stdin has the same id.
	r = run(t, `{"name":"dt","n":1}`, "add", "--keys", keys, "--peer", peer.addr, "-")
	if r.code != 0 || strings.TrimSpace(r.stdout) != wantID {
		t.Fatalf("add from stdin: exit %d, stdout %q, stderr %s", r.code, r.stdout, r.stderr)
	}

	r = run(t, "", "remove", "--keys", keys, "--peer", peer.addr, wantID)
	if r.code != 0 || strings.TrimSpace(r.stdout) != wantID {
		t.Fatalf("remove: exit %d, stdout %q, stderr %s", r.code, r.stdout, r.stderr)
	}
	if peer.Has(wantID) {
		t.Fatal("the peer still holds the removed object")
	}
	waitFor(t, 10*time.Second, func() error {
		if rm := peer.eventsOf(dt.EventObjectRemoved); len(rm) != 1 || rm[0].Key != wantID {
			return errors.New("no object_removed event on the peer")
		}
		return nil
	})

	// Removing it again: the table does not hold it.
	r = run(t, "", "remove", "--keys", keys, "--peer", peer.addr, wantID)
	if r.code != 1 || !strings.Contains(r.stderr, "not found") {
		t.Fatalf("second remove: exit %d, stderr %s", r.code, r.stderr)
	}

	r = run(t, "", "send", "--keys", keys, "--peer", peer.addr, `{"hello": ["from", "dt send"]}`)
	if r.code != 0 {
		t.Fatalf("send: exit %d: %s", r.code, r.stderr)
	}
	waitFor(t, 10*time.Second, func() error {
		msgs := peer.eventsOf(dt.EventMessageReceived)
		if len(msgs) != 1 {
			return fmt.Errorf("no message_received event on the peer; its errors: %v; send stderr: %s", peer.eventsOf(dt.EventError), r.stderr)
		}
		var v map[string][]string
		if err := json.Unmarshal(msgs[0].Object, &v); err != nil || len(v["hello"]) != 2 || v["hello"][1] != "dt send" {
			t.Fatalf("message %s", msgs[0].Object)
		}
		return nil
	})
}

// Invalid JSON is reported before any keys or network are touched: here neither exists.
func TestInvalidJSONFailsFirst(t *testing.T) {
	missingKeys := filepath.Join(t.TempDir(), "nokeys")
	r := run(t, "{not json", "add", "--keys", missingKeys, "--peer", "127.0.0.1:1", "-")
	if r.code != 1 || !strings.Contains(r.stderr, "stdin") || !strings.Contains(r.stderr, "not JSON") {
		t.Fatalf("add: exit %d, stderr %s", r.code, r.stderr)
	}
	r = run(t, "", "send", "--keys", missingKeys, "--peer", "127.0.0.1:1", `{"a":1} {"b":2}`)
	if r.code != 1 || !strings.Contains(r.stderr, "message") {
		t.Fatalf("send: exit %d, stderr %s", r.code, r.stderr)
	}
}

func TestAddNeedsMasterKey(t *testing.T) {
	keys := keygen(t)
	if err := os.Remove(filepath.Join(keys, dt.MasterKeyFile)); err != nil {
		t.Fatal(err)
	}
	r := run(t, "{}", "add", "--keys", keys, "--peer", "127.0.0.1:1", "-")
	if r.code != 1 || !strings.Contains(r.stderr, "master.key") {
		t.Fatalf("exit %d, stderr %s", r.code, r.stderr)
	}
}

// A peer that never answers ends in a timeout, exit 1.
func TestAddTimesOut(t *testing.T) {
	keys := keygen(t)
	r := run(t, "{}", "add", "--keys", keys, "--peer", "127.0.0.1:1", "--timeout", "300ms", "-")
	if r.code != 1 || !strings.Contains(r.stderr, "gave up after 300ms (--timeout)") || !strings.Contains(r.stderr, "connection refused") {
		t.Fatalf("exit %d, stderr %s", r.code, r.stderr)
	}
}

// With the wrong network key the handshake fails; the error says so.
func TestAddWrongNetworkExplains(t *testing.T) {
	peer := startPeer(t, keygen(t))
	r := run(t, "{}", "add", "--keys", keygen(t), "--peer", peer.addr, "--timeout", "1s", "-")
	if r.code != 1 || !strings.Contains(r.stderr, "refused the handshake") || !strings.Contains(r.stderr, "network.key") {
		t.Fatalf("exit %d, stderr %s", r.code, r.stderr)
	}
}
