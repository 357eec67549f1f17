package publish

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/dt-cdn/dt/dt"
	"github.com/dt-cdn/dt/internal/testkit/wait"
)

// TestKilledPublishLeavesPreviousDeployLive kills a publisher (a real process, SIGKILL) in the
// middle of its upload: every edge keeps serving the previous deploy, and a new publish of the
// same directory completes, sending only what the killed one had not.
func TestKilledPublishLeavesPreviousDeployLive(t *testing.T) {
	if testing.Short() {
		t.Skip("uploads a few megabytes through a child process")
	}
	keys, addr, edges := testNetwork(t, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	opts := NetworkOptions{Keys: keys, Peers: []string{addr}, HeartbeatInterval: testBeat, Wait: 30 * time.Second, Node: testNodeConfig()}

	dir := t.TempDir()
	writeSite(t, dir, map[string]string{"index.html": "<h1>before</h1>"})
	before := publishDir(t, ctx, dir, opts)

	// The next deploy: 300 files of 32 KiB of random data, about 10 MB to upload.
	for i := range 300 {
		b := make([]byte, 32<<10)
		rand.Read(b)
		name := filepath.Join(dir, "data", fmt.Sprintf("f%03d.bin", i))
		if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(name, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	child := exec.Command(self, "-test.run=^$")
	child.Env = append(os.Environ(),
		"DT_TEST_PUBLISH_DIR="+dir,
		"DT_TEST_PUBLISH_NETKEY="+hex.EncodeToString(keys.Network[:]),
		"DT_TEST_PUBLISH_SEED="+hex.EncodeToString(keys.Master.Seed()),
		"DT_TEST_PUBLISH_PEER="+addr,
	)
	child.Stderr = os.Stderr
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	// Kill it once some, not all, of the new blobs reached an edge.
	wait.For(t, 60*time.Second, func() error {
		n := edges[0].node.Status().Objects
		if n < 50 {
			return fmt.Errorf("%d objects on the edge so far", n)
		}
		return nil
	})
	if err := child.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = child.Wait()
	for i, e := range edges {
		if a, _ := e.follower.Active(); a.ID != before.Deploy {
			t.Fatalf("edge %d left the previous deploy after the publisher was killed", i)
		}
	}
	held := edges[0].node.Status().Objects

	after := publishDir(t, ctx, dir, opts)
	if after.EdgesLive != 2 {
		t.Fatalf("the new publish is live on %d edges", after.EdgesLive)
	}
	if after.BlobsSent >= 301 {
		t.Fatalf("the new publish resent everything (%d blobs) although %d objects were there", after.BlobsSent, held)
	}
	t.Logf("killed publish left %d objects on the edge; the next one sent %d blobs", held, after.BlobsSent)
}

func testNodeConfig() dt.Config { return dt.LocalConfig() }
