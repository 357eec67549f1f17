package dt

import (
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"fmt"
	"time"
)

// Sync protocol, per direction of a link (both directions run at once):
//
//  1. The receiver says where it is in the sender's log: frameSyncStart with its cursor. A cursor
//     is kept per peer and per incarnation of the peer's database, so a peer whose data directory
//     was wiped is never asked to resume a log it no longer has.
//  2. With a cursor, the sender streams its log from there (deltas: one round trip, and bytes in
//     proportion to what changed). Without one, the receiver first runs a range-based set
//     reconciliation (rbsr) against a snapshot of the sender's records, asks for what it lacks,
//     pushes what the sender lacks, and then asks the sender to stream its log from the snapshot.
//  3. The sender's log is then tailed live: every record the sender applies reaches the receiver
//     in the sender's commit order. frameCaughtUp marks each time the sender runs out of entries.
//  4. The dialing end repeats the reconciliation every Config.AntiEntropyInterval, a check that
//     costs a few hundred bytes when nothing differs.
//
// The log holds only each key's current record (a replaced record leaves the log), so replaying
// it from any cursor yields the current state; records are signed and idempotent, so receiving one
// twice, or from two peers, is harmless.
// cursorTracker computes how far in the peer's log we hold everything: entries whose body is still
// being fetched hold the cursor back, so a crash never skips them.
type cursorTracker struct {
	base    uint64              // everything up to base is applied
	maxSeen uint64              // the highest entry handled (applied or pending)
	pending map[uint64]struct{} // entries waiting for their body
	unknown bool                // a reconciliation is under way: there is no valid cursor yet
	saved   uint64              // the cursor last persisted
}

func (t *cursorTracker) cursor() uint64 {
	if t.unknown {
		return 0
	}
	c := max(t.base, t.maxSeen)
	for seq := range t.pending {
		c = min(c, seq-1)
	}
	return c
}

func (t *cursorTracker) handled(seq uint64, pending bool) {
	t.maxSeen = max(t.maxSeen, seq)
	if pending {
		if t.pending == nil {
			t.pending = map[uint64]struct{}{}
		}
		t.pending[seq] = struct{}{}
	}
}

func (t *cursorTracker) done(seq uint64) { delete(t.pending, seq) }

// startSync sends our position in the peer's log, or starts a reconciliation when we have none.
func (l *link) startSync() {
	l.mu.Lock()
	cursor := l.tracker.base
	if cursor == 0 || cursor > l.hello.head {
		// No cursor for this incarnation of the peer (or one beyond its log: its database was
		// restored from an older backup): reconcile instead.
		l.tracker = cursorTracker{unknown: true}
		l.mu.Unlock()
		l.send(frameSyncStart, append(binary.AppendUvarint(nil, 0), syncReconcile))
		l.startReconcile(true)
		return
	}
	l.mu.Unlock()
	l.send(frameSyncStart, append(binary.AppendUvarint(nil, cursor), syncTail))
}

// startTail starts streaming our log to the peer from after seq. Only the first request counts: a
// link has one tail.
func (l *link) startTail(after uint64) {
	l.tailOnce.Do(func() { l.wg.Go(func() { l.runTailer(after) }) })
}

// runTailer streams the local log to the peer, from after, for the life of the link. Entries that
// came from this peer are not echoed back; frameCaughtUp still moves the peer's cursor past them.
func (l *link) runTailer(after uint64) {
	n := l.n
	if head := n.head.Load(); after > head {
		after = 0 // the peer's cursor is beyond our log: send all of it
	}
	for {
		n.mu.RLock()
		wake := n.tailWake
		n.mu.RUnlock()
		entries, err := n.store.readLog(after, logQueueLen)
		if err != nil {
			n.emitError(err, "store", nil)
			l.close(err)
			return
		}
		for _, e := range entries {
			after = e.seq
			if e.origin == l.peer {
				continue
			}
			if e.rec.Kind == KindPut && e.body == nil && n.cfg.LazyBodies && !n.store.hasBlob(e.rec.Hash) {
				continue // a lazy node does not pass on what it cannot serve
			}
			p := recordPayload{seq: e.seq, record: e.raw, body: e.body}

			select {
			case l.logOut <- appendFrame(nil, frameLogEntry, p.marshal(true)):
			case <-l.ctx.Done():
				return
			}
		}
		if len(entries) == logQueueLen {
			continue
		}
		select {
		case l.logOut <- appendFrame(nil, frameCaughtUp, binary.AppendUvarint(nil, after)):
		case <-l.ctx.Done():
			return
		}
		select {
		case <-wake:
		case <-l.ctx.Done():
			return
		}
	}
}

// handled moves the cursor (log entries) or the want count (records we asked for). pending marks a
// log entry whose body is still to come.
func (l *link) handled(seq uint64, want, pending bool) {
	l.mu.Lock()
	if seq != 0 {
		l.tracker.handled(seq, pending)
	}
	if want && !pending {
		l.wantPending--
	}
	l.mu.Unlock()
	if want && !pending {
		l.checkReconciled()
	}
}

// settle marks a record that waited (for verification or its body) as applied: the cursor may
// move past it, and a reconciliation or the first sync may be complete. Once nothing is pending
// after the peer's tail caught up, the cursor is saved (and acknowledged to the peer).
func (l *link) settle(seq uint64, want bool) {
	l.mu.Lock()
	if seq != 0 {
		l.tracker.done(seq)
	}
	if want {
		l.wantPending--
	}
	idle := l.caughtUp && len(l.tracker.pending) == 0
	audit := idle && l.wantPending == 0 && l.syncing && l.needsAudit.Swap(false)
	l.mu.Unlock()
	l.checkReconciled()
	l.checkCaughtUp()
	if idle {
		l.saveCursor()
	}
	if audit {
		l.wg.Go(func() { l.audit() })
	}
}

// audit judges, once everything the peer sent is in, the records it sent that wait for their
// signer's grant: one whose signer has no grant record at all is one the peer holds no grant for
// either, since a peer streams a grant before the records it covers, so it is forged and the link
// is dropped (see auditPending). It reports whether the link is still up.
func (l *link) audit() bool {
	done := make(chan applyResult, 1)
	peer := l.peer
	if l.n.submit(l.ctx, applyOp{audit: &peer, done: done}) != nil {
		return false
	}
	select {
	case res := <-done:
		if res.err == nil {
			res.err = l.ungrantedErr()
		}
		if res.err != nil {
			l.fail(res.err)
			return false
		}
		return true
	case <-l.ctx.Done():
		return false
	}
}

// maxUngranted bounds the signers a link remembers sending records it did not keep (see
// noteUngranted); one is enough to judge the peer, a few more make the report clearer.
const maxUngranted = 8

// noteUngranted remembers that the peer sent a record whose signer had no grant, which the node
// did not keep (its body would have to be fetched), so that audit still judges that signer.
func (l *link) noteUngranted(rec *Record, id RecordID) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ungranted == nil {
		l.ungranted = map[[32]byte]ungrantedRecord{}
	}
	if len(l.ungranted) < maxUngranted {
		l.ungranted[[32]byte(rec.Master)] = ungrantedRecord{rec: rec, id: id}
	}
}

// ungrantedRecord is a record noted by noteUngranted.
type ungrantedRecord struct {
	rec *Record
	id  RecordID
}

// ungrantedErr reports, once everything the peer sent is in, a signer noted by noteUngranted
// that still has no grant: the peer sent a forged record.
func (l *link) ungrantedErr() error {
	l.mu.Lock()
	noted := l.ungranted
	l.ungranted = nil
	l.mu.Unlock()
	for signer, u := range noted {
		if _, ok := l.n.grants.get(ed25519.PublicKey(signer[:])); !ok {
			l.n.sendVerdict(l.peer, VerdictRefused, u.rec, u.id, func() string { return refusalReason(u.rec, Grant{}, false) })
			return fmt.Errorf("record %s: %w: signer %x is not a trusted master and holds no grant", u.rec.Key, ErrForged, signer[:6])
		}
	}
	return nil
}

// caughtUpTo handles frameCaughtUp: the peer's tail has nothing more after head.
func (l *link) caughtUpTo(head uint64) {
	l.mu.Lock()
	l.tracker.handled(head, false)
	l.caughtUp = true
	l.mu.Unlock()
	l.saveCursor()
	l.checkCaughtUp()
}

// checkCaughtUp marks the node synced once this link's tail has caught up and nothing it sent is
// still waiting for a body: the node then holds everything the peer held when the link came up.
func (l *link) checkCaughtUp() {
	l.mu.Lock()
	ready := l.caughtUp && !l.tracker.unknown && len(l.tracker.pending) == 0 && l.wantPending == 0 && !l.syncing
	if ready {
		l.syncing = true
	}
	l.mu.Unlock()
	if !ready {
		return
	}
	l.wg.Go(func() {
		l.needsAudit.Store(false)
		if !l.audit() {
			return
		}
		done := make(chan applyResult, 1)
		select {
		case <-l.n.synced:
			return
		default:
		}
		if l.n.submit(l.ctx, applyOp{barrier: true, done: done}) != nil {
			return
		}
		select {
		case <-done:
			l.n.markSynced()
		case <-l.ctx.Done():
		}
	})
}

// saveCursor persists our position in the peer's log, when it moved.
func (l *link) saveCursor() {
	l.mu.Lock()
	c := l.tracker.cursor()
	if c == 0 || c == l.tracker.saved {
		l.mu.Unlock()
		return
	}
	prev := l.tracker.saved
	l.tracker.saved = c
	l.mu.Unlock()
	// The cursor op queues behind every record op this link submitted, so it commits with or
	// after them: a cursor never runs ahead of the records it covers. While the link is up it
	// waits for room in the queue as long as the link lives: the peer's writer waits for the
	// acknowledgement this op sends, and nothing may come later to save the cursor again (a
	// publisher sends its manifest and waits). A link that is closing saves it within a bound.
	wait := l.ctx
	if wait.Err() != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		wait = ctx
	}
	op := applyOp{cursor: &cursorUpdate{peer: l.peer, incarnation: l.hello.incarnation, seq: c}, committed: func() {
		l.ackOut.Store(c)
		select {
		case l.ackKick <- struct{}{}:
		default:
		}
	}}
	select {
	case l.n.applyCh <- op:
	case <-wait.Done():
		// Not saved: a later call saves it (the tracker must not take it for saved).
		l.mu.Lock()
		if l.tracker.saved == c {
			l.tracker.saved = prev
		}
		l.mu.Unlock()
	case <-l.n.ctx.Done():
	}
}
