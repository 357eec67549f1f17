package accesslog

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if a test leaves a writer running.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
