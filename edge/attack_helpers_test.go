package edge

import (
	"fmt"
	"os"
	"runtime"
	"testing"
	"time"
)

// usage is the process's open descriptors, goroutines and heap (after a collection), as the
// attack tests compare it before, during and after an attack.
type usage struct {
	fds, goroutines int
	heap            uint64
}

func measure(t *testing.T) usage {
	t.Helper()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatalf("the attack tests count descriptors in /proc/self/fd: %v", err)
	}
	return usage{fds: len(ents), goroutines: runtime.NumGoroutine(), heap: ms.HeapInuse + ms.StackInuse}
}

func (u usage) String() string {
	return fmt.Sprintf("fds %d, goroutines %d, heap+stacks %d KiB", u.fds, u.goroutines, u.heap>>10)
}

// settle waits up to attackBound for the process to come back to near start: no more
// descriptors and goroutines than slack above it.
func settle(t *testing.T, start usage, slack int) usage {
	t.Helper()
	var u usage
	for deadline := time.Now().Add(attackBound); ; time.Sleep(100 * time.Millisecond) {
		u = measure(t)
		if u.fds <= start.fds+slack && u.goroutines <= start.goroutines+slack {
			return u
		}
		if time.Now().After(deadline) {
			t.Fatalf("%v after the attack, %v before it", u, start)
		}
	}
}
