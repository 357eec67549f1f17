package issuer

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests on goroutines left running, except the task loop Pebble's
// VA starts and never stops (va.New), which belongs to the test's ACME server.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/letsencrypt/pebble/v2/va.VAImpl.processTasks"))
}
