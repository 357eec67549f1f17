package dt

import (
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// TestKillDuringSync kills a syncing node with SIGKILL (a real process, real fsyncs), restarts it
// on the same data, and expects an intact database that converges to the master's set.
func TestKillDuringSync(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: syncs thousands of objects")
	}
	keys := testKeys(t)
	m := startNode(t, "master", keys, "", asMaster(), listenOn("127.0.0.1:0"))
	ctx := ctxTimeout(t, 60*time.Second)
	const objects = 4000
	want := make(map[string]bool, objects)
	var mu sync.Mutex
	var wg sync.WaitGroup
	var failed error
	for w := range 4 {
		wg.Go(func() {
			for i := w; i < objects; i += 4 {
				id, err := m.AddObject(ctx, map[string]any{"n": i, "pad": strings.Repeat("p", 1500)})
				mu.Lock()
				if err != nil {
					failed = err
				}
				want[id] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if failed != nil {
		t.Fatal(failed)
	}

	dir := t.TempDir()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	_, sentBefore := m.WireBytes()
	child := exec.Command(self, "-test.run=^$")
	child.Env = append(os.Environ(),
		"DT_TEST_CHILD_DIR="+dir,
		"DT_TEST_CHILD_NETKEY="+hex.EncodeToString(keys.Network[:]),
		"DT_TEST_CHILD_MASTER="+hex.EncodeToString(keys.Masters[0]),
		"DT_TEST_CHILD_PEERS="+m.addr(),
	)
	child.Stderr = os.Stderr
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	// Kill it once about a third of the data has gone out: mid-sync.
	waitFor(t, 30*time.Second, func() error {
		if _, sent := m.WireBytes(); sent-sentBefore < objects*1600/3 {
			return fmt.Errorf("sent %d bytes so far", sent-sentBefore)
		}
		return nil
	})
	if err := child.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = child.Wait()

	db, err := bolt.Open(filepath.Join(dir, "dt.db"), 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var held int
	err = db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			return err
		}
		held = tx.Bucket(bucketRecords).Stats().KeyN
		return nil
	})
	db.Close()
	if err != nil {
		t.Fatalf("database corrupt after kill -9: %v", err)
	}
	if held >= objects {
		t.Logf("the child held all %d objects before it was killed; the kill was not mid-sync", held)
	} else {
		t.Logf("killed holding %d of %d objects", held, objects)
	}

	back := startNode(t, "restarted", keys, dir, peers(m.addr()))
	waitFor(t, 30*time.Second, sameKeys(want, back))
	for key := range back.ObjectKeys() {
		body, err := back.Get(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		if ObjectID(body) != key {
			t.Fatalf("object %s has a body that hashes to %s", key[:12], ObjectID(body)[:12])
		}
	}
	if errs := back.eventsOf(EventError); len(errs) != 0 {
		t.Fatalf("errors after restart: %v", errs)
	}
}
