package proc

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/dt-cdn/dt/dt"
	"github.com/dt-cdn/dt/site"
)

// TestWrongNetworkKeyNeverJoins starts an edge whose network key differs from the network's (its
// master public key is the right one): the hub refuses every handshake and blocks its address,
// the edge never gets the site, and its health stays 503, while an edge with the right key
// serves the site all along.
//
// It runs a network of its own: the hub blocks the loopback address the wrong edge comes from
// (a node spares loopback unless run with --block-loopback), and every other process of a test
// connects from the same address.
func TestWrongNetworkKeyNeverJoins(t *testing.T) {
	skipShort(t)
	t.Parallel()
	n := newNetwork(t, "--block-loopback")
	good := n.startEdge(t, "edge-good", "52.37,4.90", false)
	gen := makeSite(1)
	r := n.publish(t, gen)
	if r.EdgesLive != 1 {
		t.Fatalf("live on %d edges, want 1", r.EdgesLive)
	}

	// The wrong keys: another network's key beside this network's master public key, so that
	// only the network key is wrong.
	other := filepath.Join(n.dir, "other-keys")
	if c := runCommand(t, 30*time.Second, n.dir, bins.dt, "keygen", other); c.code != 0 {
		t.Fatalf("dt keygen: exit %d: %s", c.code, c.stderr)
	}
	wrong := filepath.Join(n.dir, "wrong-keys")
	if err := os.MkdirAll(wrong, 0o700); err != nil {
		t.Fatal(err)
	}
	copyFile(t, filepath.Join(other, dt.NetworkKeyFile), filepath.Join(wrong, dt.NetworkKeyFile))
	copyFile(t, filepath.Join(n.keys, dt.MasterPubKeyFile), filepath.Join(wrong, dt.MasterPubKeyFile))

	intruder := newProcess(t, n.dir, "edge-wrong-key", bins.dt, "edge", "--keys", wrong, "--data", "data",
		"--peer", n.hubAddr(), "--local", "--http", "127.0.0.1:0", "--admin", "127.0.0.1:0",
		"--location", "40.71,-74.01", "--drain-wait", "100ms").withReadyFile()
	started := time.Now()
	intruder.start(t)
	at := intruder.waitReady(t, readyTimeout)
	e := &edgeProc{process: intruder, at: at}

	blocked := waitFor(t, 20*time.Second, "the hub blocks the wrong key's address", func() error {
		st, err := n.nodeStatus(n.hubAt)
		if err != nil {
			return err
		}
		if !slices.Contains(st.Blocked, "127.0.0.1/32") {
			return fmt.Errorf("hub blocks %v", st.Blocked)
		}
		return nil
	})
	t.Logf("the hub blocked the wrong key's address %s after its start", blocked.Round(time.Millisecond))
	// Watch the intruder a while after the block: its redials are refused at accept now.
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		code, _, _, err := n.get(e.url() + "/.well-known/dt/health")
		if err != nil || code != http.StatusServiceUnavailable {
			t.Fatalf("the wrong key's edge health: %d %v, want 503", code, err)
		}
		code, _, _, err = n.get(e.url() + "/version.txt")
		if err != nil || code == http.StatusOK {
			t.Fatalf("the wrong key's edge serves the site: %d %v", code, err)
		}
	}
	st, err := n.nodeStatus(at)
	if err != nil {
		t.Fatal(err)
	}
	if none := (site.DeployID{}).String(); st.Peers != 0 || st.Edge == nil || st.Edge.Target != none || st.Edge.Active != none {
		t.Fatalf("the wrong key's edge after %s: %d links, deploy state %+v", time.Since(started).Round(time.Millisecond), st.Peers, st.Edge)
	}
	hub, err := n.nodeStatus(n.hubAt)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range hub.Links {
		if l.Peer == at.ID {
			t.Fatalf("the hub has a link to the wrong key's node %s", at.ID)
		}
	}
	if !intruder.logContains("handshake") {
		t.Errorf("the wrong key's edge logged no failed handshake:\n%s", intruder.tail(20))
	}
	// The network itself is unharmed: the links made before the block stay up.
	if err := n.checkServes(good, gen); err != nil {
		t.Fatal(err)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
