package dt

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/dt-cdn/dt/blobs"
	"github.com/dt-cdn/dt/dt/internal/hlc"
)

// The applier is the one goroutine that changes the table. Everything that changes state (records
// from peers and from local writes, cursors, tombstone collection, the start of event delivery)
// is an op on applyCh; the applier commits ops in batches, one bbolt transaction per batch, then
// updates the in-memory index, wakes the log tailers and emits events. Serialising changes here
// keeps event order equal to commit order, and batching makes a burst of thousands of small
// records cost a handful of fsyncs.

// applyOp is one change for the applier. Exactly one of rec, cursor, barrier, start is set.
type applyOp struct {
	rec    *Record
	id     RecordID
	body   []byte // inline body to store with the record; nil when the body is in the blob store
	origin NodeID // the peer it came from; zero for local writes

	cursor *cursorUpdate

	barrier bool // commit everything queued before, then answer
	start   bool // emit EventStarted and the existing objects

	// done, when set, receives the outcome once the op is committed.
	done chan<- applyResult
	// committed, when set, runs on the applier after the op is committed. It must not block.
	committed func()
}

type cursorUpdate struct {
	peer        NodeID
	incarnation uint64
	seq         uint64
}

type applyResult struct {
	applied bool // the record won and is now the key's current record
	err     error
}

// change is one committed change of a key, for the index and the events.
type change struct {
	key     string
	old     *indexEntry // nil: the key was absent
	new     *indexEntry
	newBody []byte // the put's body, when at hand
	oldBody []byte // the replaced put's body, read before it was deleted
}

const maxApplyBatch = 1024

func (n *Node) runApplier(ctx context.Context) {
	gc := time.NewTicker(time.Hour)
	defer gc.Stop()
	batch := make([]applyOp, 0, maxApplyBatch)
	for {
		select {
		case <-ctx.Done():
			// Commit what is still queued (final cursors of closing links) before stopping.
			for {
				batch = batch[:0]
				for len(batch) < maxApplyBatch {
					select {
					case op := <-n.applyCh:
						batch = append(batch, op)
						continue
					default:
					}
					break
				}
				if len(batch) == 0 {
					return
				}
				n.commit(batch)
			}
		case <-gc.C:
			n.collectTombstones()
			continue
		case op := <-n.applyCh:
			batch = append(batch[:0], op)
		}
	drain:
		for len(batch) < maxApplyBatch {
			select {
			case op := <-n.applyCh:
				batch = append(batch, op)
			default:
				break drain
			}
		}
		n.commit(batch)
	}
}

// submit queues an op for the applier; it fails only when the node is closing.
func (n *Node) submit(ctx context.Context, op applyOp) error {
	select {
	case n.applyCh <- op:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-n.ctx.Done():
		return ErrClosed
	}
}

// commit writes one batch in one transaction.
func (n *Node) commit(batch []applyOp) {
	var (
		changes   []change
		results   = make([]applyResult, len(batch))
		unrefd    [][32]byte // bodies no current record names any more
		head      = n.head.Load()
		overlay   = map[string]*indexEntry{} // this batch's changes, ahead of the index
		maxClock  hlc.Timestamp
		startSeen bool
	)
	started := n.started
	lookup := func(key string) *indexEntry {
		if e, ok := overlay[key]; ok {
			return e
		}
		n.mu.RLock()
		defer n.mu.RUnlock()
		return n.index[key]
	}
	err := n.store.db.Update(func(tx *bolt.Tx) error {
		records, bodies, cursors := tx.Bucket(bucketRecords), tx.Bucket(bucketBodies), tx.Bucket(bucketCursors)
		// New records always go at the end of the log: pack its pages full instead of splitting
		// them half empty (bbolt's default suits random inserts). Deletions leave gaps that bbolt
		// merges as they grow.
		records.FillPercent = 0.95
		for i, op := range batch {
			switch {
			case op.cursor != nil:
				v := binary.BigEndian.AppendUint64(nil, op.cursor.incarnation)
				v = binary.BigEndian.AppendUint64(v, op.cursor.seq)
				if err := cursors.Put(op.cursor.peer[:], v); err != nil {
					return err
				}
				// A cursor moves when a peer's log was applied: the node was in touch with the
				// network at this time (see store.expireIfStale).
				if err := putUint64(tx.Bucket(bucketMeta), metaSynced, uint64(n.cfg.Now().UnixMilli())); err != nil {
					return err
				}
				continue
			case op.rec == nil:
				startSeen = startSeen || op.start
				continue
			}
			rec := op.rec
			old := lookup(rec.Key)
			if old != nil && (old.id == op.id || !rec.newer(op.id, old)) {
				continue // stale or already held: not an error, just nothing to do
			}
			head++
			entry := entryOf(rec, op.id, head)
			// The record goes under its sequence number: the bucket is the log itself, and
			// appending at its end is the cheapest write a B+tree has. A small body rides along.
			val := recordValue{seq: head, origin: op.origin, rec: rec, body: op.body}
			if err := records.Put(seqKey(head), val.marshal()); err != nil {
				return err
			}
			ch := change{key: rec.Key, old: old, new: entry, newBody: op.body}
			if rec.Kind == KindPut && op.body == nil {
				if err := refBlob(bodies, rec.Hash, 1); err != nil {
					return err
				}
			}
			if old != nil {
				if old.kind == KindPut {
					prev, _, err := unmarshalRecordValue(old.seq, records.Get(seqKey(old.seq)))
					if err != nil {
						return err
					}
					if started && old.hash != rec.Hash {
						ch.oldBody = cloneBody(prev.body)
					}
					if prev.body == nil {
						if err := refBlob(bodies, old.hash, -1); err != nil {
							return err
						}
						if bodies.Get(old.hash[:]) == nil {
							unrefd = append(unrefd, old.hash)
						}
					}
				}
				if err := records.Delete(seqKey(old.seq)); err != nil {
					return err
				}
			}
			overlay[rec.Key] = entry
			changes = append(changes, ch)
			results[i].applied = true
			maxClock = max(maxClock, rec.Clock)
		}
		meta := tx.Bucket(bucketMeta)
		if err := putUint64(meta, metaHead, head); err != nil {
			return err
		}
		clock := max(n.clock.Last(), maxClock)
		return putUint64(meta, metaClock, uint64(clock))
	})
	if err != nil {
		err = fmt.Errorf("dt: commit %d changes: %w", len(batch), err)
		n.log.Error("Commit failed", slog.Any("err", err))
		n.emitError(err, "store", nil)
		for _, op := range batch {
			if op.done != nil {
				op.done <- applyResult{err: err}
			}
		}
		return
	}
	n.clock.Observe(maxClock)

	n.mu.Lock()
	for _, ch := range changes {
		n.setIndexLocked(ch.key, ch.old, ch.new)
	}
	n.mu.Unlock()
	if len(changes) > 0 {
		n.head.Store(head)
		n.wakeTailers()
		n.metrics.recordsApplied.Add(float64(len(changes)))
	}

	for i := range changes {
		ch := &changes[i]
		if ch.old != nil && ch.old.kind == KindPut && ch.oldBody == nil && ch.old.hash != ch.new.hash && started {
			ch.oldBody, _ = n.store.blobBody(ch.old.hash) // before the blob is deleted below
		}
	}
	for _, h := range unrefd {
		if err := n.store.blobs.Delete(blobs.Hash(h)); err != nil {
			n.log.Warn("Delete unreferenced blob", slog.Any("err", err))
		}
	}
	if started {
		for _, ch := range changes {
			n.emitChange(ch)
		}
	}
	for i, op := range batch {
		if op.done != nil {
			op.done <- results[i]
		}
		if op.committed != nil {
			op.committed()
		}
	}
	if startSeen && !n.started {
		n.started = true
		n.emitStart()
	}
}

// emitChange turns a committed change into the original's events. A put that replaces a put with
// the same body (the same object added again) changes nothing the application can see.
func (n *Node) emitChange(ch change) {
	oldPut := ch.old != nil && ch.old.kind == KindPut
	newPut := ch.new.kind == KindPut
	if oldPut && newPut && ch.old.hash == ch.new.hash {
		return
	}
	if oldPut {
		n.events.push(Event{Type: EventObjectRemoved, Key: ch.key, Object: ch.oldBody})
	}
	if newPut {
		body := ch.newBody
		if body == nil {
			var err error
			if body, err = n.store.blobBody(ch.new.hash); err != nil && !n.lazyMiss(err) {
				n.emitError(fmt.Errorf("dt: read added object %s: %w", ch.key, err), "store", nil)
			}
		}
		n.events.push(Event{Type: EventObjectAdded, Key: ch.key, Object: body})
	}
}

// lazyMiss reports whether err is a body a lazy node does not hold by design.
func (n *Node) lazyMiss(err error) bool {
	return n.cfg.LazyBodies && errors.Is(err, ErrNotFound)
}

// emitStart emits EventStarted and then one EventObjectAdded per object held, in log order. It runs
// on the applier, so no change can slip between the listing and the live events.
func (n *Node) emitStart() {
	n.events.push(Event{Type: EventStarted})
	var after uint64
	for {
		entries, err := n.store.readLog(after, 512)
		if err != nil {
			n.emitError(err, "store", nil)
			return
		}
		if len(entries) == 0 {
			return
		}
		for _, e := range entries {
			after = e.seq
			if e.rec.Kind != KindPut {
				continue
			}
			body := e.body
			var err error
			if body == nil {
				body, err = n.store.blobBody(e.rec.Hash)
			}
			if err != nil && !n.lazyMiss(err) {
				n.emitError(fmt.Errorf("dt: read object %s: %w", e.rec.Key, err), "store", nil)
				continue
			}
			n.events.push(Event{Type: EventObjectAdded, Key: e.rec.Key, Object: body})
		}
	}
}

// collectTombstones deletes delete records older than the tombstone TTL.
func (n *Node) collectTombstones() {
	horizon := hlc.FromTime(n.cfg.Now().Add(-n.cfg.TombstoneTTL))
	var victims []string
	n.mu.RLock()
	for k, e := range n.index {
		if e.kind == KindDelete && e.clock < horizon {
			victims = append(victims, k)
		}
	}
	n.mu.RUnlock()
	if len(victims) == 0 {
		return
	}
	err := n.store.db.Update(func(tx *bolt.Tx) error {
		for _, k := range victims {
			n.mu.RLock()
			e := n.index[k]
			n.mu.RUnlock()
			if err := tx.Bucket(bucketRecords).Delete(seqKey(e.seq)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		n.emitError(fmt.Errorf("dt: collect tombstones: %w", err), "store", nil)
		return
	}
	n.mu.Lock()
	for _, k := range victims {
		n.setIndexLocked(k, n.index[k], nil)
	}
	n.mu.Unlock()
	n.log.Info("Collected tombstones", slog.Int("count", len(victims)))
}

func seqKey(seq uint64) []byte { return binary.BigEndian.AppendUint64(nil, seq) }

// refBlob adds delta to the count of current records naming a blob-store body; at zero the count
// goes, and the caller deletes the blob after the commit.
func refBlob(bodies *bolt.Bucket, hash [32]byte, delta int) error {
	n, _ := binary.Uvarint(bodies.Get(hash[:]))
	next := int64(n) + int64(delta)
	if next <= 0 {
		return bodies.Delete(hash[:])
	}
	return bodies.Put(hash[:], binary.AppendUvarint(nil, uint64(next)))
}
