package blobs

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
)

// Put stores the bytes read from r (until EOF) as the blob want, and returns how many bytes the
// blob has. It streams: r is hashed as it is written to a temporary file, and the blob becomes
// visible only after the hash matched and the file was fsynced (see the package documentation
// for the full sequence). Data that does not hash to want returns ErrHashMismatch; a read, write
// or sync error (a full disk: syscall.ENOSPC) is returned wrapped. Either way nothing is left
// behind.
//
// If want is already stored Put returns its size at once without reading r, and does not rewrite
// or verify the stored file. Put does not limit how much it reads: wrap r in an io.LimitReader when
// the size is known. If only the final directory fsync fails, the blob stays visible (complete and
// verified) although Put returns the error, since it cannot vouch for its durability.
//
// The sequence is google/renameio's (write a temporary file, fsync, rename) plus what renameio v2
// leaves out: the hash check before the rename, the fsync of the directory after it, and not
// replacing a blob that is already there.
func (s *Store) Put(want Hash, r io.Reader) (int64, error) {
	n, err := s.put(want, r)
	if err != nil {
		return 0, fmt.Errorf("blobs: put %s: %w", want.Short(), err)
	}
	return n, nil
}

func (s *Store) put(want Hash, r io.Reader) (int64, error) {
	if s.closed.Load() {
		return 0, ErrClosed
	}
	if n, ok := s.stat(want); ok {
		return n, nil
	}
	t, err := s.writeTemp(r)
	if err != nil {
		return 0, err
	}
	if got := t.sum(); got != want {
		t.discard()
		return 0, fmt.Errorf("%w: data hashes to %s", ErrHashMismatch, got.Short())
	}
	if err := t.close(!s.opts.NoSync); err != nil {
		t.discard()
		return 0, err
	}
	return t.n, s.publish(t.name, want, t.n)
}

// PutBytes stores b as the blob want. It checks the hash before it creates any file, so a
// mismatch costs no disk I/O at all. Otherwise it is Put.
func (s *Store) PutBytes(want Hash, b []byte) error {
	if err := s.putBytes(want, b); err != nil {
		return fmt.Errorf("blobs: put %s: %w", want.Short(), err)
	}
	return nil
}

func (s *Store) putBytes(want Hash, b []byte) error {
	if s.closed.Load() {
		return ErrClosed
	}
	if got := Sum(b); got != want {
		return fmt.Errorf("%w: data hashes to %s", ErrHashMismatch, got.Short())
	}
	if s.Has(want) {
		return nil
	}
	t, err := s.writeTempBytes(b)
	if err != nil {
		return err
	}
	if err := t.close(!s.opts.NoSync); err != nil {
		t.discard()
		return err
	}
	return s.publish(t.name, want, int64(len(b)))
}

// Write stores the bytes read from r (until EOF) under the hash of their content, and returns that
// hash and the size. Use it when the hash is not known in advance (publishing local files); use
// Put for data from the network, which must match the hash that was asked for. If the blob was
// already stored, the new copy is dropped and the stored file left as it is.
func (s *Store) Write(r io.Reader) (Hash, int64, error) {
	h, n, err := s.write(r)
	if err != nil {
		return Hash{}, 0, fmt.Errorf("blobs: write: %w", err)
	}
	return h, n, nil
}

func (s *Store) write(r io.Reader) (Hash, int64, error) {
	if s.closed.Load() {
		return Hash{}, 0, ErrClosed
	}
	t, err := s.writeTemp(r)
	if err != nil {
		return Hash{}, 0, err
	}
	h := t.sum()
	if s.Has(h) {
		// publish would find it too; returning here also skips the fsync of a file that is
		// thrown away.
		t.discard()
		return h, t.n, nil
	}
	if err := t.close(!s.opts.NoSync); err != nil {
		t.discard()
		return Hash{}, 0, err
	}
	return h, t.n, s.publish(t.name, h, t.n)
}

// temp is a blob being written in DIR/tmp. Nothing is visible under a hash name until publish.
type temp struct {
	name string
	f    *os.File
	w    io.Writer // f, or Options.WrapWriter(f)
	d    hash.Hash // nil when the caller checked the hash already
	n    int64
}

// newTemp creates an empty temporary file. Its mode is already the blob's (read-only), so that the
// rename publishes it unchanged; the descriptor is writable regardless (open(2) checks the mode
// only for files that exist).
func (s *Store) newTemp(hashed bool) (*temp, error) {
	for range 8 {
		name := filepath.Join(s.tmp, tempPrefix+strconv.FormatUint(rand.Uint64(), 36))
		f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, blobPerm)
		if errors.Is(err, fs.ErrExist) {
			continue // a 64-bit collision; pick another name
		}
		if err != nil {
			return nil, fmt.Errorf("create temporary file: %w", err)
		}
		t := &temp{name: name, f: f, w: f}
		if s.opts.WrapWriter != nil {
			t.w = s.opts.WrapWriter(f)
		}
		if hashed {
			t.d = sha256.New()
		}
		return t, nil
	}
	return nil, fmt.Errorf("create temporary file in %s: %w", s.tmp, fs.ErrExist)
}

// writeTemp copies r into a new temporary file, hashing it. On error the file is already removed.
func (s *Store) writeTemp(r io.Reader) (*temp, error) {
	t, err := s.newTemp(true)
	if err != nil {
		return nil, err
	}
	buf := s.getBuf()
	defer s.bufs.Put(buf)
	if err := t.readFrom(r, *buf); err != nil {
		t.discard()
		return nil, err
	}
	return t, nil
}

// writeTempBytes writes b, whose hash the caller checked, into a new temporary file. On error
// the file is already removed.
func (s *Store) writeTempBytes(b []byte) (*temp, error) {
	t, err := s.newTemp(false)
	if err != nil {
		return nil, err
	}
	if _, err := t.Write(b); err != nil {
		t.discard()
		return nil, fmt.Errorf("write: %w", err)
	}
	return t, nil
}

// readFrom is io.Copy with errors labelled by side, so that a caller can tell a failing network
// peer ("read: ...") from a failing disk ("write: ...").
func (t *temp) readFrom(r io.Reader, buf []byte) error {
	for {
		n, rerr := r.Read(buf)
		if n > 0 {
			if _, err := t.Write(buf[:n]); err != nil {
				return fmt.Errorf("write: %w", err)
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return fmt.Errorf("read: %w", rerr)
		}
	}
}

// Write writes p to the file and feeds what was written to the hash.
func (t *temp) Write(p []byte) (int, error) {
	n, err := t.w.Write(p)
	if n < 0 || n > len(p) {
		n, err = 0, fmt.Errorf("writer returned invalid count %d", n)
	} else if n < len(p) && err == nil {
		err = io.ErrShortWrite
	}
	if t.d != nil {
		t.d.Write(p[:n])
	}
	t.n += int64(n)
	return n, err
}

func (t *temp) sum() Hash {
	var h Hash
	t.d.Sum(h[:0])
	return h
}

// close makes the file's bytes durable (if sync) and closes it. A close error counts: NFS, for
// one, reports failed writes only there.
func (t *temp) close(sync bool) error {
	if sync {
		if err := t.f.Sync(); err != nil {
			return fmt.Errorf("sync: %w", err)
		}
	}
	if err := t.f.Close(); err != nil {
		return fmt.Errorf("close: %w", err)
	}
	return nil
}

// discard closes (if still open) and removes the temporary file. Errors are ignored: the file is
// garbage either way, and Open removes whatever is left.
func (t *temp) discard() {
	t.f.Close()
	os.Remove(t.name)
}

// publish renames the finished (fsynced, closed) temporary file to the blob's name and fsyncs the
// fan-out directory, so the blob survives a crash once publish returns.
func (s *Store) publish(tmpName string, h Hash, size int64) error {
	dir, added, err := s.link(tmpName, h)
	if err != nil {
		return err
	}
	if added {
		s.usage.add(1, size)
	}
	if s.opts.NoSync {
		return nil
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("sync directory: %w", err)
	}
	return nil
}

// link moves a finished temporary file to the blob's name and returns the fan-out directory the
// caller must fsync, and whether the blob is new. If the blob appeared meanwhile (a concurrent Put of the same hash) the
// temporary file is dropped instead, so a stored file is never rewritten; the directory still
// needs its fsync, since the other Put may not have reached its own yet.
func (s *Store) link(tmpName string, h Hash) (dir string, added bool, err error) {
	fan, name := h.path()
	dir = filepath.Join(s.dir, fan)
	dst := filepath.Join(dir, name)
	for attempt := 0; ; attempt++ {
		if err := s.ensureFanout(h[0], dir); err != nil {
			os.Remove(tmpName)
			return "", false, err
		}
		if _, err := os.Lstat(dst); err == nil {
			os.Remove(tmpName)
			return dir, false, nil
		}
		err := os.Rename(tmpName, dst)
		if err == nil {
			return dir, true, nil
		}
		// The fan-out directory may have been removed behind our back (an operator cleaning
		// up); forget that it exists and try once more.
		if errors.Is(err, fs.ErrNotExist) && attempt == 0 {
			s.forgetFanout(h[0])
			continue
		}
		os.Remove(tmpName)
		return "", false, fmt.Errorf("rename into place: %w", err)
	}
}

// ensureFanout creates the fan-out directory for first hash byte b if needed and fsyncs DIR once
// per directory and process. The fsync happens even when the directory already existed: a
// previous process may have crashed between mkdir and fsync, and without a reboot the entry is
// visible but not yet durable.
func (s *Store) ensureFanout(b byte, dir string) error {
	s.dirMu.Lock()
	defer s.dirMu.Unlock()
	if s.dirReady[b] {
		return nil
	}
	if err := os.Mkdir(dir, dirPerm); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("create fan-out directory: %w", err)
	}
	if !s.opts.NoSync {
		if err := syncDir(s.dir); err != nil {
			return fmt.Errorf("sync directory: %w", err)
		}
	}
	s.dirReady[b] = true
	return nil
}

func (s *Store) forgetFanout(b byte) {
	s.dirMu.Lock()
	s.dirReady[b] = false
	s.dirMu.Unlock()
}

// syncDir fsyncs a directory, making the entries created or renamed in it durable (POSIX leaves
// this to the application; see fsync(2) on Linux: "Calling fsync() does not necessarily ensure
// that the entry in the directory containing the file has also reached disk").
func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
