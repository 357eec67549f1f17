package blobs

import (
	"errors"
	"fmt"
	"io/fs"
	"iter"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// All returns every stored blob, in ascending hash order. It walks the fan-out directories (one
// directory read each) and does not verify the blobs: pair it with Verify to scrub a store. Names
// that are not blobs (DIR/tmp, DIR/lock, foreign files, symlinks, directories, uppercase hex) are
// skipped. A directory that cannot be read yields its error with a zero Hash; the walk goes on if
// the loop does. Blobs put or deleted during the walk may or may not be seen.
func (s *Store) All() iter.Seq2[Hash, error] {
	return func(yield func(Hash, error) bool) {
		for e, err := range s.entries() {
			if !yield(e.h, err) {
				return
			}
		}
	}
}

// Usage returns how many blobs the store holds and their total size in bytes (file sizes, not
// blocks allocated on disk). It walks the whole store; the first error ends it. It also resets
// the running count that Count reports.
func (s *Store) Usage() (blobs, bytes int64, err error) {
	u := &s.usage
	u.walk.Lock()
	defer u.walk.Unlock()
	blobs, bytes, err = s.walkUsage()
	u.mu.Lock()
	defer u.mu.Unlock()
	if err != nil {
		u.counted = time.Time{}
		return 0, 0, err
	}
	// A put or delete that ran during the walk may or may not have been seen by it, so the count
	// can be off by those until the next walk.
	u.blobs, u.bytes, u.counted = blobs, bytes, time.Now()
	return blobs, bytes, nil
}

// Count returns what Usage would, cheaply: the result of a walk (a Usage call) at most maxAge
// old, kept current since by this Store's puts and deletes. Changes made by other processes or
// by hand show at the next walk. It is for figures reported often, such as heartbeats, where a
// walk of a large store every time would cost more than the report is worth.
func (s *Store) Count(maxAge time.Duration) (blobs, bytes int64, err error) {
	u := &s.usage
	u.mu.Lock()
	if !u.counted.IsZero() && time.Since(u.counted) <= maxAge {
		blobs, bytes = u.blobs, u.bytes
		u.mu.Unlock()
		return blobs, bytes, nil
	}
	u.mu.Unlock()
	return s.Usage()
}

// usageCount is the running count behind Count.
type usageCount struct {
	walk sync.Mutex // held by the one Usage walk at a time

	mu           sync.Mutex // guards what follows; never held during a walk, so puts do not wait
	counted      time.Time  // when the last walk ended; zero: none has succeeded
	blobs, bytes int64      // what it found, plus the changes since
}

// add records a blob stored (+1, +size) or deleted (-1, -size) by this Store.
func (u *usageCount) add(blobs, bytes int64) {
	u.mu.Lock()
	if !u.counted.IsZero() {
		u.blobs += blobs
		u.bytes += bytes
	}
	u.mu.Unlock()
}

// walkUsage counts the blobs by walking the store.
func (s *Store) walkUsage() (blobs, bytes int64, err error) {
	for e, err := range s.entries() {
		if err != nil {
			return 0, 0, fmt.Errorf("blobs: usage: %w", err)
		}
		fi, err := e.d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue // deleted since the directory was read
		}
		if err != nil {
			return 0, 0, fmt.Errorf("blobs: usage: %w", err)
		}
		blobs++
		bytes += fi.Size()
	}
	return blobs, bytes, nil
}

// entry is one blob found by a walk.
type entry struct {
	h Hash
	d fs.DirEntry
}

// entries walks DIR/ab/cdef… in sorted order (os.ReadDir sorts by name, and the name is the hash).
func (s *Store) entries() iter.Seq2[entry, error] {
	return func(yield func(entry, error) bool) {
		top, err := os.ReadDir(s.dir)
		if err != nil {
			yield(entry{}, fmt.Errorf("read %s: %w", s.dir, err))
			return
		}
		for _, fan := range top {
			if !fan.IsDir() || !isFanout(fan.Name()) {
				continue
			}
			dir := filepath.Join(s.dir, fan.Name())
			ents, err := os.ReadDir(dir)
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				if !yield(entry{}, fmt.Errorf("read %s: %w", dir, err)) {
					return
				}
				continue
			}
			for _, d := range ents {
				if !d.Type().IsRegular() {
					continue
				}
				h, err := ParseHash(fan.Name() + d.Name())
				if err != nil {
					continue // not a blob name
				}
				if !yield(entry{h: h, d: d}, nil) {
					return
				}
			}
		}
	}
}

// isFanout reports whether name can be a fan-out directory: two lowercase hex digits.
func isFanout(name string) bool {
	return len(name) == 2 && isLowerHex(name[0]) && isLowerHex(name[1])
}
