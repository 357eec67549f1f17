// Package needs lets a test stop when the machine lacks what it needs (root, /proc, a loopback
// family), without letting a run that was meant to be complete pass quietly: under
// DT_REQUIRE_ALL=1, which the project's CI sets, such a test fails instead of skipping.
package needs

import (
	"os"
	"testing"
)

// Strict is the environment variable that turns Skipf into a failure.
const Strict = "DT_REQUIRE_ALL"

// Skipf skips the test for a reason of the machine's (formatted as fmt.Sprintf), or fails it
// when Strict is set to 1.
func Skipf(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv(Strict) == "1" {
		t.Fatalf("cannot run here, and %s=1 wants every test run: "+format, append([]any{Strict}, args...)...)
	}
	t.Skipf(format, args...)
}
