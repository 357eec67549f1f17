package publish

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks that no test leaks a goroutine: Scan's workers and encoders must all be gone
// when it returns, whether it succeeded, failed or was cancelled.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
