package blobs

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The crash tests re-run this test binary as a child that writes blobs (TestCrashChild, selected
// by these variables), kill it with SIGKILL at some point of a Put, and check what Open finds.
// The child reports progress on file descriptor 3, one line per event.
const (
	envCrashDir   = "BLOBS_CRASH_DIR"
	envCrashMode  = "BLOBS_CRASH_MODE" // "stall", "loop" or "batch"
	envCrashStart = "BLOBS_CRASH_START"
	stallAfter    = 8 << 20
	batchStart    = 1 << 20 // first blob index of the batch test
	batchLen      = batchSyncGroup + 6
)

// crashBlob returns the size and a reader of blob i of the crash test; the parent recomputes
// them to know what the child was writing.
// Blobs from batchStart on are small (1 byte to 48 KiB), for the batch test.
func crashBlob(i int) (int64, io.Reader) {
	size := int64(1<<20 + (i*7919*131)%(3<<20))
	if i >= batchStart {
		size = int64(1 + (i*7919)%(48<<10))
	}
	var seed [32]byte
	binary.LittleEndian.PutUint64(seed[:], uint64(i))
	return size, io.LimitReader(rand.NewChaCha8(seed), size)
}

func crashHash(i int) Hash {
	_, r := crashBlob(i)
	d := sha256.New()
	io.Copy(d, r)
	return Hash(d.Sum(nil))
}

// TestCrashChild is the child process of the crash tests; run on its own it does nothing.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(envCrashDir)
	if dir == "" {
		t.Skip("only runs as the child of a crash test")
	}
	progress := os.NewFile(3, "progress")
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	switch os.Getenv(envCrashMode) {
	case "stall":
		// A large Put whose source stops after stallAfter bytes, until the parent kills us (or
		// goes away, which closes stdin).
		r := io.MultiReader(io.LimitReader(rand.NewChaCha8([32]byte{}), stallAfter), &stallReader{progress: progress})
		_, err := s.Put(Sum([]byte("never completes")), r)
		t.Fatalf("stalled Put returned: %v", err)
	case "loop":
		start, _ := strconv.Atoi(os.Getenv(envCrashStart))
		for i := start; i < start+1000; i++ {
			_, r := crashBlob(i)
			if _, err := s.Put(crashHash(i), r); err != nil {
				t.Fatal(err)
			}
			if _, err := fmt.Fprintf(progress, "%d\n", i); err != nil {
				t.Fatal(err) // the parent is gone
			}
		}
	case "batch":
		start, _ := strconv.Atoi(os.Getenv(envCrashStart))
		for first := start; first < start+100*batchLen; first += batchLen {
			b := s.NewBatch()
			for i := first; i < first+batchLen; i++ {
				_, r := crashBlob(i)
				if _, err := b.Put(crashHash(i), r); err != nil {
					t.Fatal(err)
				}
			}
			if err := b.Commit(); err != nil {
				t.Fatal(err)
			}
			for i := first; i < first+batchLen; i++ {
				if _, err := fmt.Fprintf(progress, "%d\n", i); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
}

// stallReader announces that the stream reached its stall point, then blocks reading stdin.
type stallReader struct{ progress io.Writer }

func (r *stallReader) Read([]byte) (int, error) {
	fmt.Fprintln(r.progress, "stalled")
	io.Copy(io.Discard, os.Stdin)
	return 0, errors.New("parent went away")
}

// crashChild is a running child process and its progress.
type crashChild struct {
	cmd   *exec.Cmd
	lines chan string
	stdin io.Closer
	mode  string
	start int // index of the first blob it writes ("loop", "batch")
	done  int // blobs it reported stored so far ("loop", "batch")
}

func startCrashChild(t *testing.T, dir, mode string, start int) *crashChild {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("needs SIGKILL and an inherited descriptor")
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(),
		envCrashDir+"="+dir, envCrashMode+"="+mode, envCrashStart+"="+strconv.Itoa(start))
	cmd.ExtraFiles = []*os.File{pw}
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close() // the child holds the write end now; EOF on pr means it exited
	c := &crashChild{cmd: cmd, lines: make(chan string, 1000), stdin: stdin, mode: mode, start: start}
	go func() {
		defer close(c.lines)
		defer pr.Close()
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
	}()
	t.Cleanup(func() { c.kill(t) })
	return c
}

// next waits for the child's next progress line.
func (c *crashChild) next(t *testing.T) string {
	t.Helper()
	line, ok := <-c.lines
	if !ok {
		t.Fatal("child exited early")
	}
	c.record(t, line)
	return line
}

// record counts a progress line of "loop" or "batch", which must name the next blob in order.
func (c *crashChild) record(t *testing.T, line string) {
	t.Helper()
	if c.mode == "stall" {
		return
	}
	if i, err := strconv.Atoi(line); err != nil || i != c.start+c.done {
		t.Fatalf("child said %q, want %d", line, c.start+c.done)
	}
	c.done++
}

// inFlight returns the index of the (first) blob the child is writing.
func (c *crashChild) inFlight() int { return c.start + c.done }

// kill sends SIGKILL, reaps the child and collects the progress it wrote before it died. Killing
// twice is harmless.
func (c *crashChild) kill(t *testing.T) {
	t.Helper()
	if c.cmd.ProcessState != nil {
		return
	}
	c.cmd.Process.Kill()
	err := c.cmd.Wait()
	c.stdin.Close()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Errorf("child did not die of SIGKILL: %v", err)
	}
	for l := range c.lines {
		c.record(t, l)
	}
}

// TestCrashMidPut kills a writer in the middle of streaming a large blob: Open must find no blob
// and no temporary file.
func TestCrashMidPut(t *testing.T) {
	dir := t.TempDir()
	c := startCrashChild(t, dir, "stall", 0)
	if got := c.next(t); got != "stalled" {
		t.Fatalf("child said %q", got)
	}
	tmp := tempFiles(t, dir)
	if len(tmp) != 1 {
		t.Fatalf("temporary files mid-Put: %q, want one", tmp)
	}
	fi, err := os.Stat(filepath.Join(dir, tmpDir, tmp[0]))
	if err != nil || fi.Size() != stallAfter {
		t.Fatalf("temporary file mid-Put: %v, %v; want %d bytes written", fi, err, stallAfter)
	}
	c.kill(t)

	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	assertEmpty(t, dir)
	if got := listAll(t, s); len(got) != 0 {
		t.Errorf("All after the crash = %v", got)
	}
}

// TestCrashDuringPuts kills a child that stores blob after blob, at different stages of a Put,
// several times over the same directory. Every blob the child reported stored must be there and
// correct, the one in flight must be absent or correct, and nothing else may exist.
func TestCrashDuringPuts(t *testing.T) {
	dir := t.TempDir()
	var want []Hash
	for round := range 4 {
		c := startCrashChild(t, dir, "loop", round*1000)
		for range 2 + round%2 {
			c.next(t)
		}
		if round >= 2 {
			// A late kill: once the blob in flight is fully written, the kill lands in or
			// after its fsync and rename. The early kills land while it is being written.
			waitForFullTemp(t, dir, c)
		}
		c.kill(t)
		for i := c.start; i < c.inFlight(); i++ {
			want = append(want, crashHash(i))
		}

		s, err := Open(dir, Options{})
		if err != nil {
			t.Fatal(err)
		}
		assertNoTemp(t, dir)
		got := listAll(t, s)
		if h := crashHash(c.inFlight()); slices.Contains(got, h) {
			t.Logf("round %d: the blob in flight was complete", round)
			want = append(want, h)
		}
		if expect := sortHashes(want); !slices.Equal(got, expect) {
			t.Fatalf("round %d: All = %d blobs, want %d", round, len(got), len(expect))
		}
		checkStore(t, s)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// waitForFullTemp polls until the temporary file of the blob in flight has all its bytes, or the
// child reports that blob stored. It waits on a condition, bounded so that a hang fails the test.
func waitForFullTemp(t *testing.T, dir string, c *crashChild) {
	t.Helper()
	size, _ := crashBlob(c.inFlight())
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		select {
		case l, ok := <-c.lines:
			if !ok {
				t.Fatal("child exited early")
			}
			c.record(t, l)
			t.Logf("blob %d was stored before its temporary file was seen complete", c.inFlight()-1)
			return
		default:
		}
		ents, _ := os.ReadDir(filepath.Join(dir, tmpDir))
		for _, e := range ents {
			if fi, err := e.Info(); err == nil && strings.HasPrefix(e.Name(), tempPrefix) && fi.Size() == size {
				t.Logf("killing with blob %d fully written to its temporary file", c.inFlight())
				return
			}
		}
	}
	t.Fatal("the blob in flight never reached its full size")
}

// TestCrashDuringBatch kills a child that commits batch after batch: every blob of a committed
// batch must be there; of the batch in flight any subset may be, each one complete.
func TestCrashDuringBatch(t *testing.T) {
	dir := t.TempDir()
	var want []Hash
	for round := range 2 {
		c := startCrashChild(t, dir, "batch", batchStart+round*1000*batchLen)
		for range batchLen {
			c.next(t)
		}
		if round == 1 {
			waitForBatchWritten(t, dir, c)
		}
		c.kill(t)
		for i := c.start; i < c.inFlight(); i++ {
			want = append(want, crashHash(i))
		}
		inFlight := make(map[Hash]bool)
		for i := c.inFlight(); i < c.inFlight()+batchLen; i++ {
			inFlight[crashHash(i)] = true
		}

		s, err := Open(dir, Options{})
		if err != nil {
			t.Fatal(err)
		}
		assertNoTemp(t, dir)
		var extra int
		for _, h := range listAll(t, s) {
			switch {
			case inFlight[h]:
				want = append(want, h)
				extra++
			case !slices.Contains(want, h):
				t.Errorf("round %d: unexpected blob %s", round, h.Short())
			}
		}
		t.Logf("round %d: %d of the batch in flight were complete", round, extra)
		if got := listAll(t, s); !slices.Equal(got, sortHashes(want)) {
			t.Fatalf("round %d: All = %d blobs, want %d", round, len(got), len(want))
		}
		checkStore(t, s)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// waitForBatchWritten polls until every temporary file of the batch in flight exists (Commit is
// due), or the child reports the batch committed.
func waitForBatchWritten(t *testing.T, dir string, c *crashChild) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		select {
		case l, ok := <-c.lines:
			if !ok {
				t.Fatal("child exited early")
			}
			c.record(t, l)
			t.Log("the batch was committed before its files were seen")
			return
		default:
		}
		if n := len(tempFiles(t, dir)); n >= batchLen {
			t.Logf("killing with %d temporary files written", n)
			return
		}
	}
	t.Fatal("the batch in flight was never written")
}
