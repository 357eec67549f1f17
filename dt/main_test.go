package dt

import (
	"encoding/hex"
	"os"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

// TestMain doubles as a node process for the crash tests (see runChildNode), and otherwise checks
// that no test leaks a goroutine.
func TestMain(m *testing.M) {
	if dir := os.Getenv("DT_TEST_CHILD_DIR"); dir != "" {
		runChildNode(dir)
		return
	}
	goleak.VerifyTestMain(m)
}

// runChildNode runs a plain node from environment settings until the process is killed.
func runChildNode(dir string) {
	var keys Keys
	netKey, err := hex.DecodeString(os.Getenv("DT_TEST_CHILD_NETKEY"))
	if err != nil || len(netKey) != 32 {
		os.Exit(3)
	}
	copy(keys.Network[:], netKey)
	master, err := hex.DecodeString(os.Getenv("DT_TEST_CHILD_MASTER"))
	if err != nil {
		os.Exit(3)
	}
	keys.Masters = append(keys.Masters, master)
	cfg := LocalConfig()
	cfg.Keys = keys
	cfg.DataDir = dir
	cfg.Peers = strings.Split(os.Getenv("DT_TEST_CHILD_PEERS"), ",")
	n, err := Open(cfg)
	if err != nil {
		os.Stderr.WriteString(err.Error() + "\n")
		os.Exit(4)
	}
	for range n.Events() {
	}
}
