package fdcache

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/dt-cdn/dt/internal/testkit/procusage"
)

// dirOpener opens files of a directory by name, counting the opens.
type dirOpener struct {
	dir   string
	mu    sync.Mutex
	opens int
}

func (o *dirOpener) Open(name string) (*os.File, error) {
	o.mu.Lock()
	o.opens++
	o.mu.Unlock()
	return os.Open(filepath.Join(o.dir, name))
}

// newFiles writes n files named f0… holding their own name repeated, and returns their opener.
func newFiles(t *testing.T, n int) *dirOpener {
	t.Helper()
	dir := t.TempDir()
	for i := range n {
		name := fmt.Sprintf("f%d", i)
		if err := os.WriteFile(filepath.Join(dir, name), content(name), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return &dirOpener{dir: dir}
}

func content(name string) []byte { return bytes.Repeat([]byte(name+";"), 100) }

// checkFile reads f whole by offset and compares it with what name holds.
func checkFile(t testing.TB, f *File[string], name string) {
	t.Helper()
	want := content(name)
	if f.Size() != int64(len(want)) {
		t.Fatalf("%s: size %d, want %d", name, f.Size(), len(want))
	}
	got := make([]byte, len(want))
	if _, err := f.ReadAt(got, 0); err != nil {
		t.Fatalf("%s: read: %v", name, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: wrong bytes", name)
	}
}

func use(t *testing.T, c *Cache[string], o *dirOpener, name string) {
	t.Helper()
	f, err := c.Acquire(name, o)
	if err != nil {
		t.Fatal(err)
	}
	checkFile(t, f, name)
	f.Release()
}

func expectStats(t *testing.T, c *Cache[string], hits, misses, evicted uint64, open int64) {
	t.Helper()
	s := c.Stats()
	if s.Hits.Load() != hits || s.Misses.Load() != misses || s.Evicted.Load() != evicted || s.Open.Load() != open {
		t.Fatalf("hits %d misses %d evicted %d open %d, want %d %d %d %d",
			s.Hits.Load(), s.Misses.Load(), s.Evicted.Load(), s.Open.Load(), hits, misses, evicted, open)
	}
}

func TestEvictsLeastRecentlyUsed(t *testing.T) {
	o := newFiles(t, 4)
	c := New[string](Config{MaxIdle: 2})
	defer c.Close()
	use(t, c, o, "f0")
	use(t, c, o, "f1")
	use(t, c, o, "f0") // f1 is now the least recently used
	expectStats(t, c, 1, 2, 0, 2)
	use(t, c, o, "f2") // evicts f1
	expectStats(t, c, 1, 3, 1, 2)
	use(t, c, o, "f0")
	use(t, c, o, "f2")
	expectStats(t, c, 3, 3, 1, 2)
	use(t, c, o, "f1") // opened again; evicts f0, used before f2
	use(t, c, o, "f2")
	expectStats(t, c, 4, 4, 2, 2)
	if o.opens != 4 {
		t.Fatalf("%d opens, want 4", o.opens)
	}
}

func TestHeldFileIsNeverClosed(t *testing.T) {
	o := newFiles(t, 5)
	c := New[string](Config{MaxIdle: 1})
	defer c.Close()
	held, err := c.Acquire("f0", o)
	if err != nil {
		t.Fatal(err)
	}
	again, err := c.Acquire("f0", o) // a second holder of the same file
	if err != nil {
		t.Fatal(err)
	}
	if again != held {
		t.Fatal("a second Acquire of a held file opened it again")
	}
	for _, name := range []string{"f1", "f2", "f3", "f4"} {
		use(t, c, o, name) // each evicts the idle one before it, never f0
	}
	expectStats(t, c, 1, 5, 3, 2) // f0 held, f4 idle
	held.Release()
	checkFile(t, again, "f0") // still held once
	again.Release()           // now idle: f4 or f0 goes
	expectStats(t, c, 1, 5, 4, 1)
	use(t, c, o, "f0")
	expectStats(t, c, 2, 5, 4, 1)
}

func TestRemovedFileStillReads(t *testing.T) {
	o := newFiles(t, 1)
	c := New[string](Config{})
	defer c.Close()
	use(t, c, o, "f0")
	if err := os.Remove(filepath.Join(o.dir, "f0")); err != nil {
		t.Fatal(err)
	}
	use(t, c, o, "f0") // through the descriptor kept open
	expectStats(t, c, 1, 1, 0, 1)
	c.Close()
	if _, err := c.Acquire("f0", o); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("after Close, the removed file: %v, want not found", err)
	}
	expectStats(t, c, 1, 2, 0, 0)
}

func TestOpenErrorHoldsNothing(t *testing.T) {
	o := newFiles(t, 0)
	c := New[string](Config{})
	defer c.Close()
	if _, err := c.Acquire("missing", o); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("got %v, want not found", err)
	}
	expectStats(t, c, 0, 1, 0, 0)
}

func TestNoIdleFiles(t *testing.T) {
	o := newFiles(t, 2)
	c := New[string](Config{MaxIdle: -1})
	defer c.Close()
	use(t, c, o, "f0")
	use(t, c, o, "f0")
	expectStats(t, c, 0, 2, 0, 0)
	f, err := c.Acquire("f1", o)
	if err != nil {
		t.Fatal(err)
	}
	expectStats(t, c, 0, 3, 0, 1)
	f.Release()
	expectStats(t, c, 0, 3, 0, 0)
}

func TestCloseWithHeldFiles(t *testing.T) {
	o := newFiles(t, 3)
	c := New[string](Config{})
	use(t, c, o, "f0")
	held, err := c.Acquire("f1", o)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	expectStats(t, c, 0, 2, 0, 1) // f0 closed, f1 held
	checkFile(t, held, "f1")
	held.Release()
	expectStats(t, c, 0, 2, 0, 0)
	use(t, c, o, "f2") // still serves, keeping nothing
	expectStats(t, c, 0, 3, 0, 0)
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// TestConcurrentUse has many goroutines acquire, read and release files at random from a
// small cache: every read gets its file's bytes, no more files stay open than the bound, and
// the process's descriptors return to their start count after Close.
func TestConcurrentUse(t *testing.T) {
	const files, workers, rounds, maxIdle = 40, 16, 300, 8
	o := newFiles(t, files)
	before := procusage.Now(t)
	c := New[string](Config{MaxIdle: maxIdle})
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 1))
			for range rounds {
				name := fmt.Sprintf("f%d", r.IntN(files))
				f, err := c.Acquire(name, o)
				if err != nil {
					errs <- err
					return
				}
				got := make([]byte, f.Size())
				_, err = f.ReadAt(got, 0)
				f.Release()
				if err != nil || !bytes.Equal(got, content(name)) {
					errs <- fmt.Errorf("%s: wrong bytes (%v)", name, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	s := c.Stats()
	if s.Hits.Load()+s.Misses.Load() != workers*rounds {
		t.Fatalf("%d hits and %d misses for %d uses", s.Hits.Load(), s.Misses.Load(), workers*rounds)
	}
	if s.Evicted.Load() == 0 || s.Open.Load() > maxIdle {
		t.Fatalf("%d evicted, %d open with none held, bound %d", s.Evicted.Load(), s.Open.Load(), maxIdle)
	}
	if got := procusage.Now(t).FDs; got != before.FDs+int(s.Open.Load()) {
		t.Fatalf("%d descriptors open, %d before and %d kept", got, before.FDs, s.Open.Load())
	}
	c.Close()
	if got := procusage.Now(t).FDs; got != before.FDs || s.Open.Load() != 0 {
		t.Fatalf("after Close: %d descriptors open, %d before; %d counted open", got, before.FDs, s.Open.Load())
	}
}

// A file unused for MaxIdleTime is closed at the next Release, or before the next open.
func TestIdleTimeCloses(t *testing.T) {
	o := newFiles(t, 3)
	c := New[string](Config{MaxIdleTime: time.Minute})
	defer c.Close()
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c.now = func() time.Time { return clock }
	use(t, c, o, "f0")
	clock = clock.Add(30 * time.Second)
	use(t, c, o, "f1")
	clock = clock.Add(40 * time.Second) // f0 unused for 70s, f1 for 40s
	use(t, c, o, "f1")                  // its Release closes f0
	expectStats(t, c, 1, 2, 1, 1)
	clock = clock.Add(2 * time.Minute)
	f, err := c.Acquire("f2", o) // closes f1 before opening f2
	if err != nil {
		t.Fatal(err)
	}
	expectStats(t, c, 1, 3, 2, 1)
	f.Release()
	use(t, c, o, "f2")
	expectStats(t, c, 2, 3, 2, 1)
}
