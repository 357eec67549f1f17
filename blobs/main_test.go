package blobs

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run if a test leaves a goroutine behind (Batch syncs, crash-test readers).
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
