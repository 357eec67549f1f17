package publish

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/dt-cdn/dt/dt"
)

// TestMain checks that no test leaks a goroutine: Scan's workers and encoders must all be gone
// when it returns, whether it succeeded, failed or was cancelled. It doubles as a publisher
// process for the crash test (see runChildPublish).
func TestMain(m *testing.M) {
	if dir := os.Getenv("DT_TEST_PUBLISH_DIR"); dir != "" {
		if err := runChildPublish(dir); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}

// runChildPublish publishes dir with keys and a peer from the environment, as dt-publish does.
func runChildPublish(dir string) error {
	var keys dt.Keys
	nk, err := hex.DecodeString(os.Getenv("DT_TEST_PUBLISH_NETKEY"))
	if err != nil || len(nk) != 32 {
		return fmt.Errorf("bad network key")
	}
	copy(keys.Network[:], nk)
	seed, err := hex.DecodeString(os.Getenv("DT_TEST_PUBLISH_SEED"))
	if err != nil || len(seed) != ed25519.SeedSize {
		return fmt.Errorf("bad master seed")
	}
	keys.Master = ed25519.NewKeyFromSeed(seed)
	keys.Masters = []ed25519.PublicKey{keys.Master.Public().(ed25519.PublicKey)}
	ctx := context.Background()
	plan, err := Scan(ctx, dir, ScanOptions{})
	if err != nil {
		return err
	}
	defer plan.Close()
	_, err = Publish(ctx, plan, NetworkOptions{Keys: keys, Peers: []string{os.Getenv("DT_TEST_PUBLISH_PEER")}, Node: dt.LocalConfig()})
	return err
}
