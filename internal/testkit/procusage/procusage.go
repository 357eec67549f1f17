// Package procusage measures what a test process holds (open descriptors, goroutines, heap),
// so that attack tests can compare it before, during and after an attack and wait for it to
// come back.
package procusage

import (
	"fmt"
	"os"
	"runtime"
	"testing"
	"time"
)

// Usage is what the process holds. Descriptors and goroutines count both ends of loopback
// connections when client and server share the process.
type Usage struct {
	FDs, Goroutines int
	// Heap is the heap and stacks in use after a collection.
	Heap uint64
}

// Now measures the process. Where /proc/self/fd cannot be read it skips the test on systems
// other than Linux and fails it on Linux, where /proc is always there: the descriptors are
// what an attack test is about, and a CI run must not pass it by skipping.
func Now(t testing.TB) Usage {
	t.Helper()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		if runtime.GOOS == "linux" {
			t.Fatalf("counting descriptors in /proc/self/fd: %v", err)
		}
		t.Skipf("counts descriptors in /proc/self/fd: %v", err)
	}
	return Usage{FDs: len(ents), Goroutines: runtime.NumGoroutine(), Heap: ms.HeapInuse + ms.StackInuse}
}

func (u Usage) String() string {
	return fmt.Sprintf("fds %d, goroutines %d, heap+stacks %d KiB", u.FDs, u.Goroutines, u.Heap>>10)
}

// Settle waits up to within for the process to hold no more than slack descriptors and
// goroutines above before (those of a client or of the runtime come and go), and for more, if
// not nil, to return nil; it returns what the process holds then, and fails the test after
// within.
func Settle(t testing.TB, before Usage, slack int, within time.Duration, more func() error) Usage {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		u := Now(t)
		err := fmt.Errorf("holding %v, %v before the attack", u, before)
		if u.FDs <= before.FDs+slack && u.Goroutines <= before.Goroutines+slack {
			err = nil
			if more != nil {
				err = more()
			}
			if err == nil {
				return u
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %v", within, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
