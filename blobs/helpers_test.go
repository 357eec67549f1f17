package blobs

import (
	"bytes"
	"errors"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// newStore opens a store in a fresh directory. At cleanup it closes the store and checks it: no
// temporary files left, and every blob still verifies (tests that corrupt a blob delete it).
func newStore(t testing.TB, opts Options) *Store {
	t.Helper()
	s, err := Open(t.TempDir(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		checkStore(t, s)
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return s
}

// checkStore fails t if s has temporary files or a blob that does not verify.
func checkStore(t testing.TB, s *Store) {
	t.Helper()
	if tmp := tempFiles(t, s.Dir()); len(tmp) > 0 {
		t.Errorf("temporary files left: %q", tmp)
	}
	for h, err := range s.All() {
		if err != nil {
			t.Errorf("All: %v", err)
			continue
		}
		if err := s.Verify(h); err != nil {
			t.Errorf("Verify: %v", err)
		}
	}
}

// tempFiles lists the temporary files in a store directory.
func tempFiles(t testing.TB, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(dir, tmpDir))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), tempPrefix) {
			names = append(names, e.Name())
		}
	}
	return names
}

// blobFiles lists every regular file under the store's fan-out directories, blob or not, so that
// a test notices a file the store should not have left (All would skip a misnamed one).
func blobFiles(t testing.TB, dir string) []string {
	t.Helper()
	var names []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		if d.IsDir() && rel == tmpDir {
			return filepath.SkipDir
		}
		if !d.IsDir() && rel != lockName {
			names = append(names, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// assertEmpty fails t unless the store directory holds no blob file and no temporary file.
func assertEmpty(t testing.TB, dir string) {
	t.Helper()
	if files := blobFiles(t, dir); len(files) > 0 {
		t.Errorf("files left in the store: %q", files)
	}
	if tmp := tempFiles(t, dir); len(tmp) > 0 {
		t.Errorf("temporary files left: %q", tmp)
	}
}

// randomBlob returns n pseudo-random bytes and their hash.
func randomBlob(rng *rand.Rand, n int) ([]byte, Hash) {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b, Sum(b)
}

func newRand(t testing.TB) *rand.Rand {
	seed := uint64(len(t.Name()))
	for _, c := range t.Name() {
		seed = seed*31 + uint64(c)
	}
	return rand.New(rand.NewPCG(seed, 1))
}

// listAll collects All, failing t on an error.
func listAll(t testing.TB, s *Store) []Hash {
	t.Helper()
	var hs []Hash
	for h, err := range s.All() {
		if err != nil {
			t.Fatalf("All: %v", err)
		}
		hs = append(hs, h)
	}
	return hs
}

func sortHashes(hs []Hash) []Hash {
	hs = slices.Clone(hs)
	slices.SortFunc(hs, func(a, b Hash) int { return bytes.Compare(a[:], b[:]) })
	return hs
}

// failingReader returns data, then err instead of EOF.
type failingReader struct {
	data []byte
	err  error
}

func (r *failingReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

// untouchedReader fails the test if it is read at all.
type untouchedReader struct{ t testing.TB }

func (r untouchedReader) Read([]byte) (int, error) {
	r.t.Error("reader was read")
	return 0, errors.New("must not be read")
}
