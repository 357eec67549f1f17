// Package wait lets tests wait on conditions instead of sleeping: For polls a condition until it
// holds or a deadline passes, then fails the test with the condition's last error, which says
// what was still missing.
package wait

import (
	"testing"
	"time"
)

// For polls cond every 10 ms until it returns nil, or fails t after timeout with cond's last error.
func For(t testing.TB, timeout time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %v", timeout, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
