package cappedlog

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// check verifies the writer's invariants against everything written so far: the file is at most
// max bytes, Size agrees with the file, and the file is a suffix of all the data.
func check(t testing.TB, w *Writer, path string, all []byte, max int64) []byte {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(got)) > max {
		t.Fatalf("file holds %d bytes, cap %d", len(got), max)
	}
	if int64(len(got)) != w.Size() {
		t.Fatalf("file holds %d bytes, Size says %d", len(got), w.Size())
	}
	if !bytes.HasSuffix(all, got) {
		t.Fatalf("file (%d bytes) is not the newest data (of %d bytes)", len(got), len(all))
	}
	if len(all) > 0 && len(got) == 0 {
		t.Fatalf("file is empty after %d bytes were written", len(all))
	}
	return got
}

func create(t testing.TB, max int64) (*Writer, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "1.log")
	w, err := Create(path, max)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w, path
}

func TestUnderCapKeepsEverything(t *testing.T) {
	w, path := create(t, 100)
	var all []byte
	for i := range 9 {
		line := fmt.Appendf(nil, "line %d\n", i)
		all = append(all, line...)
		if n, err := w.Write(line); err != nil || n != len(line) {
			t.Fatalf("Write = %d, %v", n, err)
		}
	}
	if got := check(t, w, path, all, 100); !bytes.Equal(got, all) {
		t.Fatalf("file = %q, want %q", got, all)
	}
}

func TestCreateTruncates(t *testing.T) {
	path := filepath.Join(t.TempDir(), "1.log")
	if err := os.WriteFile(path, []byte("old run\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	w, err := Create(path, 50)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.Write([]byte("new\n")); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(path); string(got) != "new\n" {
		t.Fatalf("file = %q", got)
	}
}

func TestRotationKeepsNewestHalfFromALineStart(t *testing.T) {
	const max = 64
	w, path := create(t, max)
	var all []byte
	for i := range 40 {
		line := fmt.Appendf(nil, "event %02d\n", i) // 9 bytes
		all = append(all, line...)
		if _, err := w.Write(line); err != nil {
			t.Fatal(err)
		}
		got := check(t, w, path, all, max)
		if len(all) > max && got[0] != 'e' {
			t.Fatalf("after rotation the file starts mid-line: %q", got)
		}
	}
	got, _ := os.ReadFile(path)
	if !strings.HasSuffix(string(got), "event 39\n") {
		t.Fatalf("newest line missing: %q", got)
	}
}

func TestSingleWriteBiggerThanCap(t *testing.T) {
	const max = 32
	w, path := create(t, max)
	if _, err := w.Write([]byte("start\n")); err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte("abcdefghij"), 10) // 100 bytes, no newline
	if n, err := w.Write(big); err != nil || n != len(big) {
		t.Fatalf("Write = %d, %v", n, err)
	}
	got := check(t, w, path, append([]byte("start\n"), big...), max)
	if want := big[len(big)-max/2:]; !bytes.Equal(got, want) {
		t.Fatalf("file = %q, want the newest half of the cap %q", got, want)
	}
	// Writing on after the rotation appends as usual.
	if _, err := w.Write([]byte("z")); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(path); string(got) != string(big[len(big)-max/2:])+"z" {
		t.Fatalf("file after next write = %q", got)
	}
}

func TestRandomWrites(t *testing.T) {
	const max = 1000
	w, path := create(t, max)
	r := rand.New(rand.NewPCG(1, 2))
	var all []byte
	for range 500 {
		p := make([]byte, r.IntN(700))
		for i := range p {
			p[i] = "abc\n"[r.IntN(4)]
		}
		all = append(all, p...)
		if _, err := w.Write(p); err != nil {
			t.Fatal(err)
		}
		check(t, w, path, all, max)
	}
}

func TestConcurrentWritesStayWhole(t *testing.T) {
	const max = 4096
	w, path := create(t, max)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 200 {
				fmt.Fprintf(w, "writer %d line %03d\n", g, i)
			}
		})
	}
	wg.Wait()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) > max {
		t.Fatalf("file holds %d bytes, cap %d", len(got), max)
	}
	for _, line := range strings.Split(strings.TrimSuffix(string(got), "\n"), "\n") {
		var g, i int
		if _, err := fmt.Sscanf(line, "writer %d line %d", &g, &i); err != nil {
			t.Fatalf("torn line %q: %v", line, err)
		}
	}
}

func TestClose(t *testing.T) {
	w, _ := create(t, 10)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := w.Write([]byte("x")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Write after Close: %v, want ErrClosed", err)
	}
}

func TestCreateRejectsTinyCap(t *testing.T) {
	if _, err := Create(filepath.Join(t.TempDir(), "x.log"), 1); !errors.Is(err, ErrCap) {
		t.Fatalf("Create with cap 1: %v, want ErrCap", err)
	}
}

// FuzzWriter splits the input into writes of fuzzed sizes and checks the invariants after each.
func FuzzWriter(f *testing.F) {
	f.Add([]byte("hello\nworld\n"), uint16(8), []byte{3, 9, 1})
	f.Add(bytes.Repeat([]byte("x"), 300), uint16(16), []byte{200, 1})
	f.Add([]byte("\n\n\n\n"), uint16(2), []byte{1})
	f.Fuzz(func(t *testing.T, data []byte, limit uint16, sizes []byte) {
		if limit < 2 || len(sizes) == 0 || len(data) > 1<<16 {
			t.Skip()
		}
		w, path := create(t, int64(limit))
		var all []byte
		for i := 0; len(data) > 0; i++ {
			n := min(max(int(sizes[i%len(sizes)]), 1), len(data)) // a zero size would never finish
			all = append(all, data[:n]...)
			if _, err := w.Write(data[:n]); err != nil {
				t.Fatal(err)
			}
			data = data[n:]
			check(t, w, path, all, int64(limit))
		}
	})
}

func BenchmarkWrite(b *testing.B) {
	w, _ := create(b, 10_000_000)
	line := []byte(`time=2025-01-01T00:00:00Z level=INFO msg=Event type=object_added key=9f86d081884c7d65` + "\n")
	b.SetBytes(int64(len(line)))
	for b.Loop() {
		if _, err := w.Write(line); err != nil {
			b.Fatal(err)
		}
	}
}
