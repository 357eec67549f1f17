package blobs

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"
)

func TestRoundTrip(t *testing.T) {
	s := newStore(t, Options{})
	rng := newRand(t)
	for _, size := range []int{0, 1, 4095, 4096, copyBufSize + 3, 1<<20 + 7} {
		data, h := randomBlob(rng, size)
		n, err := s.Put(h, bytes.NewReader(data))
		if err != nil {
			t.Fatalf("Put(%d bytes): %v", size, err)
		}
		if n != int64(size) {
			t.Errorf("Put returned %d, want %d", n, size)
		}
		if !s.Has(h) {
			t.Errorf("Has(%s) = false after Put", h.Short())
		}
		if got, err := s.Size(h); err != nil || got != int64(size) {
			t.Errorf("Size = %d, %v; want %d", got, err, size)
		}
		got, err := s.ReadAll(h)
		if err != nil || !bytes.Equal(got, data) {
			t.Errorf("ReadAll(%d bytes) = %d bytes, %v", size, len(got), err)
		}
		f, err := s.Open(h)
		if err != nil {
			t.Fatal(err)
		}
		got, err = io.ReadAll(f)
		f.Close()
		if err != nil || !bytes.Equal(got, data) {
			t.Errorf("Open+read (%d bytes) = %d bytes, %v", size, len(got), err)
		}
		if err := s.Verify(h); err != nil {
			t.Errorf("Verify: %v", err)
		}
		fan, name := h.path()
		fi, err := os.Stat(filepath.Join(s.Dir(), fan, name))
		if err != nil {
			t.Fatalf("blob not at DIR/ab/cdef…: %v", err)
		}
		if runtime.GOOS != "windows" && fi.Mode().Perm() != blobPerm {
			t.Errorf("blob mode = %v, want %v", fi.Mode().Perm(), os.FileMode(blobPerm))
		}
	}
}

func TestPutExistingIsNoOp(t *testing.T) {
	s := newStore(t, Options{})
	data, h := randomBlob(newRand(t), 10000)
	if err := s.PutBytes(h, data); err != nil {
		t.Fatal(err)
	}
	path := s.blobPath(h)
	before, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	// The reader is not consumed and the file is not replaced.
	n, err := s.Put(h, untouchedReader{t})
	if err != nil || n != int64(len(data)) {
		t.Fatalf("Put of a stored blob = %d, %v; want %d, nil", n, err, len(data))
	}
	if err := s.PutBytes(h, data); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Write(bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	b := s.NewBatch()
	if n, err := b.Put(h, untouchedReader{t}); err != nil || n != int64(len(data)) {
		t.Fatalf("Batch.Put of a stored blob = %d, %v", n, err)
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	after, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(before, after) {
		t.Error("a Put of a stored blob replaced the file")
	}
}

func TestWrite(t *testing.T) {
	s := newStore(t, Options{})
	data, want := randomBlob(newRand(t), 300<<10)
	h, n, err := s.Write(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if h != want || n != int64(len(data)) {
		t.Errorf("Write = %s, %d; want %s, %d", h.Short(), n, want.Short(), len(data))
	}
	if got, err := s.ReadAll(want); err != nil || !bytes.Equal(got, data) {
		t.Errorf("ReadAll = %d bytes, %v", len(got), err)
	}
}

func TestNotFound(t *testing.T) {
	s := newStore(t, Options{})
	h := Sum([]byte("never stored"))
	if s.Has(h) {
		t.Error("Has = true")
	}
	if _, err := s.Size(h); !errors.Is(err, ErrNotFound) {
		t.Errorf("Size: %v, want ErrNotFound", err)
	}
	if _, err := s.Open(h); !errors.Is(err, ErrNotFound) {
		t.Errorf("Open: %v, want ErrNotFound", err)
	}
	if _, err := s.ReadAll(h); !errors.Is(err, ErrNotFound) {
		t.Errorf("ReadAll: %v, want ErrNotFound", err)
	}
	if err := s.Verify(h); !errors.Is(err, ErrNotFound) {
		t.Errorf("Verify: %v, want ErrNotFound", err)
	}
	if err := s.Delete(h); err != nil {
		t.Errorf("Delete of a missing blob: %v", err)
	}
}

func TestDelete(t *testing.T) {
	s := newStore(t, Options{})
	data, h := randomBlob(newRand(t), 5000)
	if err := s.PutBytes(h, data); err != nil {
		t.Fatal(err)
	}
	f, err := s.Open(h)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := s.Delete(h); err != nil {
		t.Fatal(err)
	}
	if s.Has(h) {
		t.Error("Has = true after Delete")
	}
	// A reader that had it open keeps reading it.
	if got, err := io.ReadAll(f); err != nil || !bytes.Equal(got, data) {
		t.Errorf("read after Delete = %d bytes, %v", len(got), err)
	}
	// And it can be stored again.
	if err := s.PutBytes(h, data); err != nil {
		t.Fatal(err)
	}
}

func TestHashMismatchLeavesNothing(t *testing.T) {
	s := newStore(t, Options{})
	data, _ := randomBlob(newRand(t), 200<<10)
	wrong := Sum([]byte("something else"))

	if _, err := s.Put(wrong, bytes.NewReader(data)); !errors.Is(err, ErrHashMismatch) {
		t.Errorf("Put: %v, want ErrHashMismatch", err)
	}
	if err := s.PutBytes(wrong, data); !errors.Is(err, ErrHashMismatch) {
		t.Errorf("PutBytes: %v, want ErrHashMismatch", err)
	}
	b := s.NewBatch()
	if _, err := b.Put(wrong, bytes.NewReader(data)); !errors.Is(err, ErrHashMismatch) {
		t.Errorf("Batch.Put: %v, want ErrHashMismatch", err)
	}
	if err := b.PutBytes(wrong, data); !errors.Is(err, ErrHashMismatch) {
		t.Errorf("Batch.PutBytes: %v, want ErrHashMismatch", err)
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	if s.Has(wrong) || s.Has(Sum(data)) {
		t.Error("a mismatching blob is visible")
	}
	assertEmpty(t, s.Dir())
}

func TestFailingReaderLeavesNothing(t *testing.T) {
	s := newStore(t, Options{})
	data, h := randomBlob(newRand(t), 700<<10)
	errPeer := errors.New("peer went away")

	_, err := s.Put(h, &failingReader{data: data[:300<<10], err: errPeer})
	if !errors.Is(err, errPeer) {
		t.Errorf("Put: %v, want the reader's error", err)
	}
	if _, _, err := s.Write(&failingReader{data: data[:300<<10], err: errPeer}); !errors.Is(err, errPeer) {
		t.Errorf("Write: %v, want the reader's error", err)
	}
	b := s.NewBatch()
	if _, err := b.Put(h, &failingReader{data: data[:300<<10], err: errPeer}); !errors.Is(err, errPeer) {
		t.Errorf("Batch.Put: %v, want the reader's error", err)
	}
	b.Discard()
	if s.Has(h) {
		t.Error("blob visible after a failed read")
	}
	assertEmpty(t, s.Dir())

	// The whole stream followed by the error is still a failure: EOF was never seen.
	if _, err := s.Put(h, &failingReader{data: data, err: errPeer}); !errors.Is(err, errPeer) {
		t.Errorf("Put of full data then error: %v", err)
	}
	assertEmpty(t, s.Dir())
}

func TestOpenRemovesLeftoverTempFiles(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	data, h := randomBlob(newRand(t), 1000)
	if err := s.PutBytes(h, data); err != nil {
		t.Fatal(err)
	}
	leftover := filepath.Join(dir, tmpDir, tempPrefix+"crashed")
	foreign := filepath.Join(dir, tmpDir, "not-ours")
	for _, p := range []string{leftover, foreign} {
		if err := os.WriteFile(p, data[:500], 0o600); err != nil {
			t.Fatal(err)
		}
	}

	// While s is open the leftover might be one of its Puts in progress: a second Open keeps it.
	s2, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(leftover); err != nil {
		t.Errorf("Open removed a temporary file while another Store held the directory: %v", err)
	}
	if err := s2.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s3, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s3.Close()
	if _, err := os.Stat(leftover); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("leftover temporary file survived Open: %v", err)
	}
	if _, err := os.Stat(foreign); err != nil {
		t.Errorf("Open removed a file that is not a temporary file: %v", err)
	}
	if err := s3.Verify(h); err != nil {
		t.Errorf("blob lost across reopen: %v", err)
	}
}

func TestConcurrentPutSameHash(t *testing.T) {
	s := newStore(t, Options{})
	data, h := randomBlob(newRand(t), 1<<20)
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() {
			var n int64
			var err error
			switch i % 3 {
			case 0:
				n, err = s.Put(h, bytes.NewReader(data))
			case 1:
				err, n = s.PutBytes(h, data), int64(len(data))
			case 2:
				var got Hash
				got, n, err = s.Write(bytes.NewReader(data))
				if err == nil && got != h {
					t.Errorf("Write = %s", got.Short())
				}
			}
			if err == nil && n != int64(len(data)) {
				t.Errorf("goroutine %d stored %d bytes", i, n)
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("goroutine %d: %v", i, err)
		}
	}
	if got := listAll(t, s); !slices.Equal(got, []Hash{h}) {
		t.Errorf("All = %v, want just %s", got, h.Short())
	}
}

func TestConcurrentPutDifferentHashes(t *testing.T) {
	dir := t.TempDir()
	// Two Stores on one directory, as two processes would be.
	stores := make([]*Store, 2)
	for i := range stores {
		s, err := Open(dir, Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		stores[i] = s
	}
	const workers, each = 6, 25
	want := make([][]Hash, workers)
	var wg sync.WaitGroup
	for w := range workers {
		rng := rand.New(rand.NewPCG(uint64(w), 2))
		blobs := make([][]byte, each)
		for i := range blobs {
			blobs[i], _ = randomBlob(rng, 100+rng.IntN(20000)+w)
			want[w] = append(want[w], Sum(blobs[i]))
		}
		wg.Go(func() {
			s := stores[w%len(stores)]
			for i, b := range blobs {
				if _, err := s.Put(want[w][i], bytes.NewReader(b)); err != nil {
					t.Errorf("worker %d: %v", w, err)
				}
			}
		})
	}
	wg.Wait()
	all := sortHashes(slices.Concat(want...))
	all = slices.Compact(all)
	if got := listAll(t, stores[0]); !slices.Equal(got, all) {
		t.Errorf("All lists %d blobs, want %d", len(got), len(all))
	}
	checkStore(t, stores[1])
}

func TestVerifyDetectsFlippedByte(t *testing.T) {
	s := newStore(t, Options{})
	data, h := randomBlob(newRand(t), 100<<10)
	if err := s.PutBytes(h, data); err != nil {
		t.Fatal(err)
	}
	if err := s.Verify(h); err != nil {
		t.Fatal(err)
	}
	flipByte(t, s.blobPath(h), int64(len(data)/2))

	if err := s.Verify(h); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Verify of a corrupt blob: %v, want ErrCorrupt", err)
	}
	if _, err := s.ReadAll(h); !errors.Is(err, ErrCorrupt) {
		t.Errorf("ReadAll of a corrupt blob: %v, want ErrCorrupt", err)
	}
	// Put does not repair (documented); Delete and Put again does.
	if err := s.PutBytes(h, data); err != nil {
		t.Fatal(err)
	}
	if err := s.Verify(h); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Verify after a no-op Put: %v, want ErrCorrupt", err)
	}
	if err := s.Delete(h); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(h, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	if err := s.Verify(h); err != nil {
		t.Errorf("Verify after re-fetch: %v", err)
	}
}

// flipByte inverts one bit of a file in place, as bit rot would.
func flipByte(t testing.TB, path string, off int64) {
	t.Helper()
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x10
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

func TestAllAndUsage(t *testing.T) {
	s := newStore(t, Options{})
	rng := newRand(t)
	var want []Hash
	var bytesWant int64
	for range 60 {
		data, h := randomBlob(rng, rng.IntN(3000))
		if err := s.PutBytes(h, data); err != nil {
			t.Fatal(err)
		}
		want = append(want, h)
		bytesWant += int64(len(data))
	}
	want = sortHashes(slices.Compact(sortHashes(want)))

	// Junk that is not a blob, around and inside the fan-out directories.
	dir := s.Dir()
	fan, name := want[0].path()
	junk := map[string]string{
		"README":                          "top-level file",
		"zz/" + name:                      "not a hex fan-out directory",
		"AB/" + name:                      "uppercase fan-out directory",
		"abc/" + name:                     "three-letter directory",
		fan + "/short":                    "too short",
		fan + "/" + name[:61] + "G":       "not hex",
		fan + "/" + name + "0":            "too long",
		fan + "/" + name[:60] + "AB":      "uppercase name",
		fan + "/.hidden":                  "dotfile",
		tmpDir + "/" + tempPrefix + "x":   "temporary file",
		fan + "/" + name[:61] + "x/inner": "directory named almost like a blob",
	}
	for p, content := range junk {
		p = filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// A directory and a symlink that carry valid blob names are not blobs either.
	ghost := Sum([]byte("ghost"))
	gfan, gname := ghost.path()
	if err := os.MkdirAll(filepath.Join(dir, gfan, gname), 0o755); err != nil {
		t.Fatal(err)
	}
	link := Sum([]byte("link"))
	lfan, lname := link.path()
	os.MkdirAll(filepath.Join(dir, lfan), 0o755)
	if err := os.Symlink(s.blobPath(want[0]), filepath.Join(dir, lfan, lname)); err != nil {
		t.Fatal(err)
	}

	got := listAll(t, s)
	if !slices.Equal(got, want) {
		t.Errorf("All = %d hashes, want the %d stored, in order", len(got), len(want))
	}
	n, size, err := s.Usage()
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(len(want)) || size != bytesWant {
		t.Errorf("Usage = %d blobs, %d bytes; want %d, %d", n, size, len(want), bytesWant)
	}

	// Stopping early is honoured.
	var seen int
	for range s.All() {
		seen++
		if seen == 3 {
			break
		}
	}
	if seen != 3 {
		t.Errorf("loop ran %d times", seen)
	}
	os.Remove(filepath.Join(dir, tmpDir, tempPrefix+"x")) // not the store's; keep cleanup quiet
}

func TestFanoutRemovedBehindTheStore(t *testing.T) {
	s := newStore(t, Options{})
	a := []byte("first")
	h := Sum(a)
	if err := s.PutBytes(h, a); err != nil {
		t.Fatal(err)
	}
	fan, _ := h.path()
	if err := os.RemoveAll(filepath.Join(s.Dir(), fan)); err != nil {
		t.Fatal(err)
	}
	if err := s.PutBytes(h, a); err != nil {
		t.Fatalf("Put after the fan-out directory was removed: %v", err)
	}
	if err := s.Verify(h); err != nil {
		t.Fatal(err)
	}
}

func TestClose(t *testing.T) {
	s, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	data := []byte("kept")
	h := Sum(data)
	if err := s.PutBytes(h, data); err != nil {
		t.Fatal(err)
	}
	b := s.NewBatch()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	other := []byte("other")
	if err := s.PutBytes(Sum(other), other); !errors.Is(err, ErrClosed) {
		t.Errorf("PutBytes after Close: %v, want ErrClosed", err)
	}
	if _, err := s.Put(h, untouchedReader{t}); !errors.Is(err, ErrClosed) {
		t.Errorf("Put after Close: %v, want ErrClosed", err)
	}
	if _, _, err := s.Write(bytes.NewReader(other)); !errors.Is(err, ErrClosed) {
		t.Errorf("Write after Close: %v, want ErrClosed", err)
	}
	if err := b.PutBytes(Sum(other), other); !errors.Is(err, ErrClosed) {
		t.Errorf("Batch.PutBytes after Close: %v, want ErrClosed", err)
	}
	if got, err := s.ReadAll(h); err != nil || !bytes.Equal(got, data) {
		t.Errorf("ReadAll after Close = %q, %v", got, err)
	}
	assertNoTemp(t, s.Dir())
}

func assertNoTemp(t testing.TB, dir string) {
	t.Helper()
	if tmp := tempFiles(t, dir); len(tmp) > 0 {
		t.Errorf("temporary files left: %q", tmp)
	}
}

func TestDiskFree(t *testing.T) {
	s := newStore(t, Options{})
	free, err := s.DiskFree()
	if errors.Is(err, errors.ErrUnsupported) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	if free == 0 {
		t.Error("DiskFree = 0 on the test's temporary directory")
	}
}

// TestCount: the running count follows this store's puts (single, streamed and batched) and
// deletes without a walk, and picks up changes made behind its back at the next walk.
func TestCount(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	check := func(maxAge time.Duration, blobs, bytes int64) {
		t.Helper()
		n, b, err := s.Count(maxAge)
		if err != nil || n != blobs || b != bytes {
			t.Fatalf("Count = %d blobs, %d bytes, %v; want %d, %d", n, b, err, blobs, bytes)
		}
	}
	check(time.Hour, 0, 0)
	a, bb := []byte("alpha"), []byte("bravo!")
	if err := s.PutBytes(Sum(a), a); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(Sum(bb), bytes.NewReader(bb)); err != nil {
		t.Fatal(err)
	}
	if err := s.PutBytes(Sum(a), a); err != nil { // already there: not counted twice
		t.Fatal(err)
	}
	check(time.Hour, 2, 11)
	batch := s.NewBatch()
	c := []byte("charlie")
	if err := batch.PutBytes(Sum(c), c); err != nil {
		t.Fatal(err)
	}
	if err := batch.Commit(); err != nil {
		t.Fatal(err)
	}
	check(time.Hour, 3, 18)
	if err := s.Delete(Sum(a)); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(Sum(a)); err != nil { // gone already: nothing to subtract
		t.Fatal(err)
	}
	check(time.Hour, 2, 13)

	// Removed behind the store's back: the count does not know until it walks again.
	if err := os.Remove(s.blobPath(Sum(bb))); err != nil {
		t.Fatal(err)
	}
	check(time.Hour, 2, 13)
	check(0, 1, 7)
}
