package dt

import (
	"bytes"
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
			// appending at its end is the cheapest write a B+tree has.
			val := recordValue{seq: head, origin: op.origin, rec: rec}
			if err := records.Put(seqKey(head), val.marshal()); err != nil {
				return err
			}
			ch := change{key: rec.Key, old: old, new: entry, newBody: op.body}
			if rec.Kind == KindPut {
				if err := refBody(bodies, rec.Hash, op.body); err != nil {
					return err
				}
			}
			if old != nil {
				if err := records.Delete(seqKey(old.seq)); err != nil {
					return err
				}
				if old.kind == KindPut {
					oldBody, zero, err := unrefBody(bodies, old.hash, started && old.hash != rec.Hash)
					if err != nil {
						return err
					}
					ch.oldBody = oldBody
					if zero {
						unrefd = append(unrefd, old.hash)
					}
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
			ch.oldBody, _ = n.store.blobs.ReadAll(blobs.Hash(ch.old.hash))
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
			if body, err = n.store.body(ch.new.hash); err != nil && !n.lazyMiss(err) {
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
			body, err := n.store.body(e.rec.Hash)
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

// Bodies bucket values: a kind byte (bodyInline, or bodyInBlobs when the body is in the blob
// store), the uvarint number of current records naming the body, then the inline body.
const (
	bodyInline  = 1
	bodyInBlobs = 2
)

// refBody counts one more record naming hash, storing body inline when given.
func refBody(bodies *bolt.Bucket, hash [32]byte, body []byte) error {
	kind, refs, inline := parseBodyValue(bodies.Get(hash[:]))
	if refs == 0 {
		kind, inline = bodyInBlobs, nil
		if body != nil {
			kind, inline = bodyInline, body
		}
	}
	return bodies.Put(hash[:], bodyValue(kind, refs+1, inline))
}

// unrefBody counts one record less naming hash. It returns the inline body when keep is set (for
// the removal event), and whether no record names the body any more (it is then deleted here, and
// the caller deletes a blob-store copy after the commit).
func unrefBody(bodies *bolt.Bucket, hash [32]byte, keep bool) (body []byte, zero bool, err error) {
	kind, refs, inline := parseBodyValue(bodies.Get(hash[:]))
	if keep && kind == bodyInline {
		body = bytes.Clone(inline)
	}
	if refs <= 1 {
		return body, true, bodies.Delete(hash[:])
	}
	return body, false, bodies.Put(hash[:], bodyValue(kind, refs-1, inline))
}

func bodyValue(kind byte, refs uint64, inline []byte) []byte {
	b := binary.AppendUvarint(append(make([]byte, 0, 11+len(inline)), kind), refs)
	return append(b, inline...)
}

// parseBodyValue decodes a bodies value; nil gives zero refs. The slice aliases bbolt memory.
func parseBodyValue(v []byte) (kind byte, refs uint64, inline []byte) {
	if len(v) < 2 {
		return 0, 0, nil
	}
	refs, n := binary.Uvarint(v[1:])
	if n <= 0 {
		return 0, 0, nil
	}
	return v[0], refs, v[1+n:]
}
