package blobs

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"sync"
)

// Batch stores many blobs with fewer, overlapping fsyncs. Batch.Put writes and verifies a
// temporary file as Store.Put does, but nothing becomes visible until Commit. The fsyncs of the
// temporary files are deferred and issued together, up to batchSyncGroup at once from as many
// goroutines (filesystems with a journal fold concurrent fsyncs into one commit); Commit then
// renames every file into place and fsyncs each touched fan-out directory once, instead of once
// per blob. Every file is complete and synced before its rename, so a crash at any point leaves
// each blob of the batch either absent or complete; the batch is not atomic as a whole.
//
// Because fsyncs are deferred, a failing fsync is reported by Commit (the blob concerned is then
// absent), not by the Put that wrote the file.
//
// A Batch is safe for concurrent use. End every batch with Commit or Discard: otherwise up to
// batchSyncGroup (64) descriptors stay open until the Batch is garbage, and its temporary files
// stay in DIR/tmp until the next Open that finds the directory unused.
type Batch struct {
	s *Store

	mu       sync.Mutex
	pending  map[Hash]*pendingBlob // verified, not yet renamed; guarded by mu
	unsynced []*pendingBlob        // pending blobs whose file is still open and unsynced; guarded by mu
	errs     []error               // failed deferred fsyncs, for Commit; guarded by mu
	done     bool                  // Commit or Discard was called; guarded by mu
	syncing  sync.WaitGroup        // groups being fsynced by Puts; Add only under mu while !done
}

// batchSyncGroup is how many temporary files a Batch keeps open before it fsyncs them together.
// It bounds the open descriptors per batch. Measured on a shared 2-core VM (ext4 on virtio), 64
// blobs of 1 KiB in 7 interleaved rounds, median per blob: 3.1-4.2 ms with one Store.Put each,
// 2.3-7.5 ms with a Batch that fsyncs each file as it is written, 1.2-2.3 ms with this grouping.
const batchSyncGroup = 64

type pendingBlob struct {
	h   Hash
	t   *temp
	err error // set by syncGroup
}

// NewBatch starts an empty batch.
func (s *Store) NewBatch() *Batch {
	return &Batch{s: s, pending: make(map[Hash]*pendingBlob)}
}

// Put writes the blob want from r as Store.Put does, without making it visible: it becomes
// visible at Commit. A hash already stored or already in the batch is a no-op that does not read r.
func (b *Batch) Put(want Hash, r io.Reader) (int64, error) {
	n, err := b.put(want, r)
	if err != nil {
		return 0, fmt.Errorf("blobs: batch put %s: %w", want.Short(), err)
	}
	return n, nil
}

func (b *Batch) put(want Hash, r io.Reader) (int64, error) {
	if n, ok, err := b.lookup(want); ok || err != nil {
		return n, err
	}
	t, err := b.s.writeTemp(r)
	if err != nil {
		return 0, err
	}
	if got := t.sum(); got != want {
		t.discard()
		return 0, fmt.Errorf("%w: data hashes to %s", ErrHashMismatch, got.Short())
	}
	return t.n, b.add(want, t)
}

// PutBytes is Put for a byte slice; like Store.PutBytes it checks the hash before writing.
func (b *Batch) PutBytes(want Hash, p []byte) error {
	if err := b.putBytes(want, p); err != nil {
		return fmt.Errorf("blobs: batch put %s: %w", want.Short(), err)
	}
	return nil
}

func (b *Batch) putBytes(want Hash, p []byte) error {
	if got := Sum(p); got != want {
		return fmt.Errorf("%w: data hashes to %s", ErrHashMismatch, got.Short())
	}
	if _, ok, err := b.lookup(want); ok || err != nil {
		return err
	}
	t, err := b.s.writeTempBytes(p)
	if err != nil {
		return err
	}
	return b.add(want, t)
}

// lookup reports whether want needs no write: stored already, or pending in the batch. On a
// finished batch or a closed store it returns ErrClosed, before anything is written.
func (b *Batch) lookup(want Hash) (int64, bool, error) {
	b.mu.Lock()
	p, ok := b.pending[want]
	done := b.done
	b.mu.Unlock()
	if done || b.s.closed.Load() {
		return 0, false, ErrClosed
	}
	if ok {
		return p.t.n, true, nil
	}
	n, ok := b.s.stat(want)
	return n, ok, nil
}

// add records a verified temporary file for Commit. With fsync on, the file stays open until its
// group is synced; the Put that fills a group syncs it.
func (b *Batch) add(h Hash, t *temp) error {
	sync := !b.s.opts.NoSync
	if !sync {
		if err := t.close(false); err != nil {
			t.discard()
			return err
		}
	}
	b.mu.Lock()
	if b.done || b.s.closed.Load() {
		b.mu.Unlock()
		t.discard()
		return ErrClosed
	}
	if _, dup := b.pending[h]; dup {
		b.mu.Unlock()
		t.discard() // a concurrent Put of the same hash in this batch won
		return nil
	}
	p := &pendingBlob{h: h, t: t}
	b.pending[h] = p
	var group []*pendingBlob
	if sync {
		b.unsynced = append(b.unsynced, p)
		if len(b.unsynced) >= batchSyncGroup {
			group, b.unsynced = b.unsynced, nil
			b.syncing.Add(1)
		}
	}
	b.mu.Unlock()
	if group != nil {
		defer b.syncing.Done()
		b.syncGroup(group)
	}
	return nil
}

// syncGroup fsyncs and closes the files of a group concurrently. Failed blobs leave the batch and
// their errors wait for Commit.
func (b *Batch) syncGroup(group []*pendingBlob) {
	var wg sync.WaitGroup
	for _, p := range group {
		wg.Go(func() { p.err = p.t.close(true) })
	}
	wg.Wait()
	for _, p := range group {
		if p.err == nil {
			continue
		}
		p.t.discard()
		b.mu.Lock()
		delete(b.pending, p.h)
		b.errs = append(b.errs, fmt.Errorf("%s: %w", p.h.Short(), p.err))
		b.mu.Unlock()
	}
}

// Len returns how many blobs wait for Commit.
func (b *Batch) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.pending)
}

// finish marks the batch done, waits for groups being synced, and hands over what is left.
func (b *Batch) finish() (unsynced []*pendingBlob) {
	b.mu.Lock()
	b.done = true
	unsynced, b.unsynced = b.unsynced, nil
	b.mu.Unlock()
	b.syncing.Wait() // no new group can start: done is set
	return unsynced
}

// Commit makes every blob of the batch visible and durable: it fsyncs the files not synced yet,
// renames each into place, then fsyncs each touched fan-out directory once. If a blob fails (its
// fsync or rename), the others still go in and the errors are returned joined; the failed blobs
// are simply absent. After Commit the batch is finished and further Puts return ErrClosed; Puts
// running concurrently with Commit may or may not be included.
func (b *Batch) Commit() error {
	b.syncGroup(b.finish())
	b.mu.Lock()
	pending, errs := b.pending, b.errs
	b.pending, b.errs = nil, nil
	b.mu.Unlock()
	if b.s.closed.Load() {
		discardAll(pending)
		return fmt.Errorf("blobs: commit batch: %w", ErrClosed)
	}

	// Rename in hash order, which is fan-out directory order: each directory's entries are
	// added together.
	hashes := slices.SortedFunc(maps.Keys(pending), func(a, b Hash) int { return slices.Compare(a[:], b[:]) })
	var dirs []string
	for _, h := range hashes {
		dir, added, err := b.s.link(pending[h].t.name, h)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", h.Short(), err))
			continue
		}
		if added {
			b.s.usage.add(1, pending[h].t.n)
		}
		if len(dirs) == 0 || dirs[len(dirs)-1] != dir {
			dirs = append(dirs, dir)
		}
	}
	if !b.s.opts.NoSync {
		for _, dir := range dirs {
			if err := syncDir(dir); err != nil {
				errs = append(errs, fmt.Errorf("sync directory: %w", err))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("blobs: commit batch: %w", err)
	}
	return nil
}

// Discard drops the batch: its temporary files are removed and nothing becomes visible. Discard
// after Commit, or twice, does nothing.
func (b *Batch) Discard() {
	b.finish()
	b.mu.Lock()
	pending := b.pending
	b.pending, b.errs = nil, nil
	b.mu.Unlock()
	discardAll(pending)
}

func discardAll(pending map[Hash]*pendingBlob) {
	for _, p := range pending {
		p.t.discard() // closes the file if it is still open
	}
}
