package wait

import (
	"errors"
	"testing"
	"time"
)

func TestForReturnsOnceTheConditionHolds(t *testing.T) {
	calls := 0
	For(t, 5*time.Second, func() error {
		calls++
		if calls < 3 {
			return errors.New("not yet")
		}
		return nil
	})
	if calls != 3 {
		t.Fatalf("condition called %d times, want 3", calls)
	}
}

// recorder captures a failure instead of ending the test.
type recorder struct {
	testing.TB
	failed string
}

func (r *recorder) Helper() {}
func (r *recorder) Fatalf(format string, args ...any) {
	r.failed = format
	panic(r)
}

func TestForFailsWithTheLastError(t *testing.T) {
	r := &recorder{TB: t}
	defer func() {
		if recover() != r || r.failed == "" {
			t.Fatal("For did not fail after its timeout")
		}
	}()
	For(r, 30*time.Millisecond, func() error { return errors.New("still missing") })
}
