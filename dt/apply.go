package dt

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/dt-cdn/dt/blobs"
	"github.com/dt-cdn/dt/dt/internal/hlc"
)

// The applier is the one goroutine that changes the table. Everything that changes state (records
// from peers and from local writes, cursors, tombstone collection, the listing of the table to a
// new event subscription) is an op on applyCh; the applier commits ops in batches, one bbolt
// transaction per batch, then updates the in-memory index, wakes the log tailers and publishes
// events. Serialising changes here
// keeps event order equal to commit order, and batching makes a burst of thousands of small
// records cost a handful of fsyncs.

// applyOp is one change for the applier. Exactly one of rec, cursor, barrier, audit, subscribe is set.
type applyOp struct {
	rec    *Record
	id     RecordID
	body   []byte // inline body to store with the record; nil when the body is in the blob store
	origin NodeID // the peer it came from; zero for local writes

	cursor *cursorUpdate

	barrier   bool          // commit everything queued before, then answer
	audit     *NodeID       // judge the records this peer sent that wait for a grant (see delegation.go)
	subscribe *Subscription // queue EventStarted and the objects held for a new subscription

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

// change is one committed change of a key, for the index and the events. A body in the blob
// store is not read here: its event carries the hash (see publishObject).
type change struct {
	key       string
	old       *indexEntry // nil: the key was absent
	new       *indexEntry
	newBody   []byte // the put's inline body
	oldBody   []byte // the replaced put's inline body, read before it was deleted
	newInBlob bool   // the put's body is in the blob store
	oldInBlob bool   // the replaced put's body is in the blob store
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
		case <-n.pins.wake:
			n.sweepOrphans()
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

// commit writes one batch in one transaction, then brings the index, the log tailers and the
// event subscriptions up to it.
func (n *Node) commit(batch []applyOp) {
	w := &batchWrite{
		n:       n,
		notify:  n.hasSubscribers(),
		head:    n.head.Load(),
		overlay: map[string]*indexEntry{},
		results: make([]applyResult, len(batch)),
	}
	if err := n.store.db.Update(func(tx *bolt.Tx) error { return w.write(tx, batch) }); err != nil {
		n.failBatch(batch, fmt.Errorf("dt: commit %d changes: %w", len(batch), err))
		return
	}
	n.clock.Observe(w.maxClock)
	n.updateIndex(w.changes, w.head)
	n.afterGrants(w)
	if w.notify {
		for _, ch := range w.changes {
			n.emitChange(ch)
		}
	}
	n.deleteBlobs(w.unrefd) // after the events, which pin the bodies they pass by hash
	for i, op := range batch {
		if op.done != nil {
			op.done <- w.results[i]
		}
		if op.committed != nil {
			op.committed()
		}
	}
	for _, op := range batch {
		if op.subscribe != nil {
			n.list(op.subscribe)
		}
	}
}

// batchWrite is the state of one batch's transaction.
type batchWrite struct {
	n        *Node
	notify   bool // someone subscribes: keep the replaced inline bodies for the events
	head     uint64
	overlay  map[string]*indexEntry // this batch's changes, ahead of the index
	changes  []change
	results  []applyResult
	unrefd   [][32]byte // blob-store bodies no current record names any more
	maxClock hlc.Timestamp

	grantChanges map[[32]byte]*Grant // grants this batch changed; see delegation.go
	grantOrder   [][32]byte          // their keys, in the order they changed
	refusals     []refusal           // records refused against their signer's grant
	verdicts     []outVerdict        // verdicts for the peers records came from, sent after the commit
	dropped      int                 // records dropped because their grant changed
}

// write applies a batch's ops within tx.
func (w *batchWrite) write(tx *bolt.Tx, batch []applyOp) error {
	// New records always go at the end of the log: pack its pages full instead of splitting
	// them half empty (bbolt's default suits random inserts). Deletions leave gaps that bbolt
	// merges as they grow.
	tx.Bucket(bucketRecords).FillPercent = 0.95
	for i, op := range batch {
		switch {
		case op.cursor != nil:
			if err := w.saveCursor(tx, op.cursor); err != nil {
				return err
			}
		case op.audit != nil:
			w.results[i].err = w.auditPending(tx, *op.audit)
		case op.rec != nil:
			applied, refused, err := w.judge(tx, op)
			if err != nil {
				return err
			}
			w.results[i] = applyResult{applied: applied, err: refused}
		}
	}
	// Grants changed by this batch: judge again what their keys wrote and have pending.
	for _, pub := range w.grantOrder {
		if err := w.regrant(tx, pub); err != nil {
			return err
		}
	}
	// A body whose count reached zero may be named again by a later record of the batch.
	bodies := tx.Bucket(bucketBodies)
	w.unrefd = slices.DeleteFunc(w.unrefd, func(h [32]byte) bool { return bodies.Get(h[:]) != nil })
	meta := tx.Bucket(bucketMeta)
	if err := putUint64(meta, metaHead, w.head); err != nil {
		return err
	}
	return putUint64(meta, metaClock, uint64(max(w.n.clock.Last(), w.maxClock)))
}

// saveCursor stores how far a peer's log was applied.
func (w *batchWrite) saveCursor(tx *bolt.Tx, c *cursorUpdate) error {
	v := binary.BigEndian.AppendUint64(nil, c.incarnation)
	v = binary.BigEndian.AppendUint64(v, c.seq)
	if err := tx.Bucket(bucketCursors).Put(c.peer[:], v); err != nil {
		return err
	}
	// A cursor moves when a peer's log was applied: the node was in touch with the network at
	// this time (see store.expireIfStale).
	return putUint64(tx.Bucket(bucketMeta), metaSynced, uint64(w.n.cfg.Now().UnixMilli()))
}

// applyRecord appends a record to the log if it wins over the key's current one, and retires
// that one. It reports whether the record was applied.
func (w *batchWrite) applyRecord(tx *bolt.Tx, op applyOp) (bool, error) {
	rec := op.rec
	old := w.lookup(rec.Key)
	if old != nil && (old.id == op.id || !rec.newer(op.id, old)) {
		return false, nil // stale or already held: not an error, just nothing to do
	}
	records, bodies := tx.Bucket(bucketRecords), tx.Bucket(bucketBodies)
	w.head++
	entry := entryOf(rec, op.id, w.head)
	// The record goes under its sequence number: the bucket is the log itself, and appending at
	// its end is the cheapest write a B+tree has. A small body rides along.
	val := recordValue{seq: w.head, origin: op.origin, rec: rec, body: op.body}
	if err := records.Put(seqKey(w.head), val.marshal()); err != nil {
		return false, err
	}
	ch := change{key: rec.Key, old: old, new: entry, newBody: op.body}
	if rec.Kind == KindPut && op.body == nil {
		ch.newInBlob = true
		if err := refBlob(bodies, rec.Hash, 1); err != nil {
			return false, err
		}
	}
	if old != nil {
		if err := w.retire(records, bodies, old, rec, &ch); err != nil {
			return false, err
		}
	}
	w.overlay[rec.Key] = entry
	w.changes = append(w.changes, ch)
	w.maxClock = max(w.maxClock, hlc.Timestamp(rec.Clock))
	if strings.HasPrefix(rec.Key, GrantKeyPrefix) {
		w.noteGrant(op)
	}
	return true, nil
}

// retire deletes a key's replaced record from the log and drops its reference to a blob-store
// body, keeping what the removal's event needs.
func (w *batchWrite) retire(records, bodies *bolt.Bucket, old *indexEntry, rec *Record, ch *change) error {
	if old.kind == KindPut {
		prev, _, err := unmarshalRecordValue(old.seq, records.Get(seqKey(old.seq)))
		if err != nil {
			return err
		}
		if w.notify && old.hash != rec.Hash {
			ch.oldBody = cloneBody(prev.body)
		}
		if prev.body == nil {
			ch.oldInBlob = true
			if err := refBlob(bodies, old.hash, -1); err != nil {
				return err
			}
			if bodies.Get(old.hash[:]) == nil {
				w.unrefd = append(w.unrefd, old.hash)
			}
		}
	}
	return records.Delete(seqKey(old.seq))
}

// lookup returns a key's current record, this batch's changes included.
func (w *batchWrite) lookup(key string) *indexEntry {
	if e, ok := w.overlay[key]; ok {
		return e
	}
	w.n.mu.RLock()
	defer w.n.mu.RUnlock()
	return w.n.index[key]
}

// failBatch reports a batch that did not commit to the application and to every writer waiting.
func (n *Node) failBatch(batch []applyOp, err error) {
	n.log.Error("Commit failed", slog.Any("err", err))
	n.emitError(err, "store", nil)
	for _, op := range batch {
		if op.done != nil {
			op.done <- applyResult{err: err}
		}
	}
	// A new subscription is still listed: it sees the table as it is.
	for _, op := range batch {
		if op.subscribe != nil {
			n.list(op.subscribe)
		}
	}
}

// updateIndex brings the in-memory index up to a committed batch and wakes the log tailers.
func (n *Node) updateIndex(changes []change, head uint64) {
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
}

// emitChange turns a committed change into the original's events. A put that replaces a put with
// the same body (the same object added again) changes nothing the application can see.
func (n *Node) emitChange(ch change) {
	oldPut := ch.old != nil && ch.old.kind == KindPut
	newPut := ch.new != nil && ch.new.kind == KindPut
	if oldPut && newPut && ch.old.hash == ch.new.hash {
		return
	}
	if oldPut {
		n.publishObject(Event{Type: EventObjectRemoved, Key: ch.key, Object: ch.oldBody}, ch.oldInBlob, ch.old.hash)
	}
	if newPut {
		n.publishObject(Event{Type: EventObjectAdded, Key: ch.key, Object: ch.newBody}, ch.newInBlob, ch.new.hash)
	}
}

// lazyMiss reports whether err is a body a lazy node does not hold by design.
func (n *Node) lazyMiss(err error) bool {
	return n.cfg.LazyBodies && errors.Is(err, ErrNotFound)
}

// deleteBlobs deletes blob-store bodies no record names, except those an event still has to
// deliver: those are kept until sweepOrphans.
func (n *Node) deleteBlobs(hashes [][32]byte) {
	for _, h := range hashes {
		if n.pins.keep(h) {
			continue
		}
		if err := n.store.blobs.Delete(blobs.Hash(h)); err != nil {
			n.log.Warn("Delete unreferenced blob", slog.Any("err", err))
		}
	}
}

// sweepOrphans deletes the blobs kept for events that have now been delivered, unless a record
// names them again. It runs on the applier (or after it stopped), the one writer of the
// references.
func (n *Node) sweepOrphans() {
	hashes := n.pins.released()
	if len(hashes) == 0 {
		return
	}
	err := n.store.db.View(func(tx *bolt.Tx) error {
		bodies := tx.Bucket(bucketBodies)
		hashes = slices.DeleteFunc(hashes, func(h [32]byte) bool { return bodies.Get(h[:]) != nil })
		return nil
	})
	if err != nil {
		n.log.Warn("Sweep blobs kept for events", slog.Any("err", err))
		return
	}
	n.deleteBlobs(hashes)
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
