package blobs

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
)

// Layout of a store directory; see the package documentation.
const (
	tmpDir     = "tmp"
	lockName   = "lock"
	tempPrefix = "put-"
	// blobPerm is read-only: blobs never change, and a write through another path would turn a
	// blob corrupt without changing its name.
	blobPerm = 0o444
	dirPerm  = 0o755
	// copyBufSize is the read size of Put. Larger than io.Copy's 32 KiB so that a 10 MiB Put makes
	// 40 write calls, not 320; larger still gains nothing measurable.
	copyBufSize = 256 << 10
)

// Options configure a Store. The zero value is the production configuration.
type Options struct {
	// NoSync skips every fsync (files and directories). For tests and benchmarks only: it voids
	// the crash-safety promise. Hashes are still verified before a blob becomes visible.
	NoSync bool

	// Logger receives a line for each leftover temporary file Open removes. If nil, nothing is
	// logged.
	Logger *slog.Logger

	// WrapWriter, if set, wraps the writer of every temporary file; Put writes the blob's bytes
	// through what it returns. For tests: it injects write failures (a full disk, an I/O error)
	// without filling a real disk, as bbolt's Options.OpenFile does for its tests. Nil writes to
	// the file directly.
	WrapWriter func(w io.Writer) io.Writer
}

// Store is a directory of blobs. It is safe for concurrent use by multiple goroutines, and by
// several Stores (also in other processes) on the same directory.
type Store struct {
	dir  string
	tmp  string
	opts Options
	log  *slog.Logger

	// lock is DIR/lock, held with a shared flock while the store is open so that another Open
	// does not remove this store's temporary files. Nil after Close.
	lockMu sync.Mutex
	lock   *os.File // guarded by lockMu
	closed atomic.Bool

	bufs sync.Pool // *[]byte of copyBufSize, for Put

	// dirMu guards dirReady. Lock order: dirMu is a leaf; nothing else is locked while it is held.
	dirMu sync.Mutex
	// dirReady[i] is set once the fan-out directory for first byte i exists and DIR has been
	// fsynced after it was seen, so its entry survives a crash. Guarded by dirMu.
	dirReady [256]bool

	usage usageCount
}

// Open opens the store in dir, creating the directory if needed. If no other Store holds dir, it
// removes temporary files left by a crash (which never hold a visible blob). Open does not read
// or verify the blobs themselves; see Store.Verify and Store.All for that.
func Open(dir string, opts Options) (*Store, error) {
	s := &Store{
		dir:  dir,
		tmp:  filepath.Join(dir, tmpDir),
		opts: opts,
		log:  opts.Logger,
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.bufs.New = func() any { b := make([]byte, copyBufSize); return &b }
	if err := os.MkdirAll(s.tmp, dirPerm); err != nil {
		return nil, fmt.Errorf("blobs: open %s: %w", dir, err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, lockName), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("blobs: open %s: %w", dir, err)
	}
	if err := s.lockAndClean(lock); err != nil {
		lock.Close()
		return nil, fmt.Errorf("blobs: open %s: %w", dir, err)
	}
	s.lock = lock
	return s, nil
}

// lockAndClean removes leftover temporary files if it can take DIR/lock exclusively (no other
// Store is writing), then holds it shared for the life of the store.
func (s *Store) lockAndClean(lock *os.File) error {
	alone, err := tryLockExclusive(lock)
	if err != nil {
		return fmt.Errorf("lock: %w", err)
	}
	if alone {
		if err := s.cleanTemp(); err != nil {
			return err
		}
	}
	// Converting exclusive to shared is not atomic, but nothing is lost if another Open slips in
	// between: this store has not started any Put yet.
	if err := lockShared(lock); err != nil {
		return fmt.Errorf("lock: %w", err)
	}
	return nil
}

// cleanTemp removes the temporary files in DIR/tmp. Other names there are left alone.
func (s *Store) cleanTemp() error {
	ents, err := os.ReadDir(s.tmp)
	if err != nil {
		return fmt.Errorf("clean temporary files: %w", err)
	}
	var errs []error
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), tempPrefix) || e.IsDir() {
			continue
		}
		err := os.Remove(filepath.Join(s.tmp, e.Name()))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
			continue
		}
		s.log.Info("Removed leftover temporary file", "dir", s.dir, "name", e.Name())
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("clean temporary files: %w", err)
	}
	return nil
}

// Close releases the store's lock on its directory. Later writes fail with ErrClosed; reads keep
// working (they need no lock). Close does not wait for Puts in progress: those may still succeed
// or fail, and never leave a partial blob. Calling Close twice is safe.
func (s *Store) Close() error {
	s.closed.Store(true)
	s.lockMu.Lock()
	defer s.lockMu.Unlock()
	if s.lock == nil {
		return nil
	}
	err := s.lock.Close() // closing the descriptor releases the flock
	s.lock = nil
	if err != nil {
		return fmt.Errorf("blobs: close %s: %w", s.dir, err)
	}
	return nil
}

// Dir returns the store's directory.
func (s *Store) Dir() string { return s.dir }

// blobPath returns where the blob named h lives (whether or not it exists).
func (s *Store) blobPath(h Hash) string {
	fan, name := h.path()
	return filepath.Join(s.dir, fan, name)
}

// Has reports whether the blob is stored. It does not verify it. An error other than "does not
// exist" (a permission problem, say) reports false as well.
func (s *Store) Has(h Hash) bool {
	_, ok := s.stat(h)
	return ok
}

// stat returns the blob's size and whether it is stored, without building an error on a miss
// (the common case in Put).
func (s *Store) stat(h Hash) (int64, bool) {
	fi, err := os.Lstat(s.blobPath(h))
	if err != nil {
		return 0, false
	}
	return fi.Size(), true
}

// Size returns the size of a stored blob, or ErrNotFound.
func (s *Store) Size(h Hash) (int64, error) {
	fi, err := os.Lstat(s.blobPath(h))
	if err != nil {
		return 0, mapReadError("size", h, err)
	}
	return fi.Size(), nil
}

// Open opens a stored blob for reading, or returns ErrNotFound. The caller closes the file. The
// bytes are not verified as they are read (see Verify); the file stays readable even if the blob
// is deleted meanwhile.
func (s *Store) Open(h Hash) (*os.File, error) {
	f, err := os.Open(s.blobPath(h))
	if err != nil {
		return nil, mapReadError("open", h, err)
	}
	return f, nil
}

// ReadAll returns a stored blob's bytes after checking them against h: a blob that rotted on disk
// yields ErrCorrupt, never wrong bytes. A missing blob yields ErrNotFound. Meant for small blobs;
// stream large ones through Open.
func (s *Store) ReadAll(h Hash) ([]byte, error) {
	b, err := os.ReadFile(s.blobPath(h))
	if err != nil {
		return nil, mapReadError("read", h, err)
	}
	if got := Sum(b); got != h {
		return nil, fmt.Errorf("blobs: read %s: %w: content hashes to %s", h.Short(), ErrCorrupt, got.Short())
	}
	return b, nil
}

// Verify re-reads a stored blob and checks its hash. It returns ErrCorrupt if the bytes no longer
// match (delete the blob and fetch it again), ErrNotFound if it is missing, or a wrapped I/O error.
func (s *Store) Verify(h Hash) error {
	f, err := os.Open(s.blobPath(h))
	if err != nil {
		return mapReadError("verify", h, err)
	}
	defer f.Close()
	d := sha256.New()
	buf := s.getBuf()
	defer s.bufs.Put(buf)
	if _, err := io.CopyBuffer(d, f, *buf); err != nil {
		return fmt.Errorf("blobs: verify %s: %w", h.Short(), err)
	}
	if got := Hash(d.Sum(nil)); got != h {
		return fmt.Errorf("blobs: verify %s: %w: content hashes to %s", h.Short(), ErrCorrupt, got.Short())
	}
	return nil
}

// Delete removes a blob. A missing blob is not an error. Readers that have it open keep reading
// it. Delete does not fsync, so after a crash the blob may reappear (see the package Caveats).
func (s *Store) Delete(h Hash) error {
	size, ok := s.stat(h)
	err := os.Remove(s.blobPath(h))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("blobs: delete %s: %w", h.Short(), err)
	}
	if ok && err == nil {
		s.usage.add(-1, -size)
	}
	return nil
}

// DiskFree returns the bytes available to an unprivileged user on the store's filesystem.
func (s *Store) DiskFree() (uint64, error) {
	n, err := diskFree(s.dir)
	if err != nil {
		return 0, fmt.Errorf("blobs: disk free %s: %w", s.dir, err)
	}
	return n, nil
}

func (s *Store) getBuf() *[]byte { return s.bufs.Get().(*[]byte) }

// mapReadError turns "does not exist" into ErrNotFound and wraps everything else.
func mapReadError(op string, h Hash, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("blobs: %s %s: %w", op, h.Short(), ErrNotFound)
	}
	return fmt.Errorf("blobs: %s %s: %w", op, h.Short(), err)
}
