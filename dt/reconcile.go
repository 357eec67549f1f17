package dt

import (
	"encoding/binary"
	"fmt"
	"log/slog"
	"time"

	"github.com/dt-cdn/dt/dt/internal/rbsr"
)

// Range-based set reconciliation on a link: the fallback when a peer has no cursor into our log,
// and the periodic check behind the log stream.

// reconcile is our side of one set reconciliation with the peer.
type reconcile struct {
	initial bool // part of the link's start: ends with frameTailFrom
	init    *rbsr.Initiator
	head    uint64 // the peer's log head at its snapshot
	have    [][32]byte
	need    [][32]byte
	done    bool // the exchange is over; wants may still be outstanding
	started time.Time
}

// snapshot returns the node's records as a reconciliation set, and the log head it covers.
func (n *Node) snapshot() (*rbsr.Set, uint64) {
	head := n.head.Load() // read before the index: every entry up to head is then in it
	n.mu.RLock()
	items := make([]rbsr.Item, 0, len(n.index))
	for _, e := range n.index {
		items = append(items, rbsr.Item{Timestamp: uint64(e.clock), ID: e.id})
	}
	n.mu.RUnlock()
	return rbsr.NewSet(items), head
}

// reconcileFrameLimit keeps reconciliation messages well inside one control frame.
const reconcileFrameLimit = 256 << 10

func (l *link) startReconcile(initial bool) {
	l.mu.Lock()
	if l.recon != nil {
		l.mu.Unlock()
		return
	}
	set, _ := l.n.snapshot()
	rc := &reconcile{initial: initial, init: rbsr.NewInitiator(set, reconcileFrameLimit), started: time.Now()}
	msg, err := rc.init.Initiate()
	if err != nil {
		l.mu.Unlock()
		l.close(fmt.Errorf("dt: start reconciliation: %w", err))
		return
	}
	l.recon = rc
	l.mu.Unlock()
	l.n.metrics.reconciliations.Inc()
	l.send(frameReconcile, appendLenBytes(nil, msg))
}

// respond answers a reconciliation message against a snapshot taken at the first message.
func (l *link) respond(payload []byte) error {
	d := decoder{b: payload}
	msg := d.lenBytes(maxFrameSize)
	if err := d.finish("reconcile"); err != nil {
		return err
	}
	l.mu.Lock()
	if len(msg) == 0 {
		l.responder = nil // the initiator finished this exchange
		l.mu.Unlock()
		return nil
	}
	if l.responder == nil {
		// The snapshot takes n.mu, which is taken before l.mu (Close and register hold n.mu
		// while they close links): taking it under l.mu could deadlock with them. Only this
		// reader sets the responder, so it is still nil after the snapshot.
		l.mu.Unlock()
		set, head := l.n.snapshot()
		l.mu.Lock()
		l.responder, l.respHead = rbsr.NewResponder(set, reconcileFrameLimit), head
	}
	resp, head := l.responder, l.respHead
	l.mu.Unlock()
	out, err := resp.Respond(msg)
	if err != nil {
		return fmt.Errorf("%w: reconciliation: %w", ErrMalformed, err)
	}
	b := binary.AppendUvarint(nil, head)
	l.send(frameReconcileReply, appendLenBytes(b, out))
	return nil
}

// reconcileReply advances our reconciliation; when it completes, it asks for what we lack and
// pushes what the peer lacks.
func (l *link) reconcileReply(head uint64, msg []byte) error {
	l.mu.Lock()
	rc := l.recon
	l.mu.Unlock()
	if rc == nil {
		return fmt.Errorf("%w: reconciliation reply without a reconciliation", ErrMalformed)
	}
	if rc.head == 0 {
		rc.head = head
	}
	var next []byte
	if len(msg) > 0 {
		var have, need [][32]byte
		var err error
		next, have, need, err = rc.init.Reconcile(msg)
		rc.have, rc.need = append(rc.have, have...), append(rc.need, need...)
		if err != nil {
			return fmt.Errorf("%w: reconciliation: %w", ErrMalformed, err)
		}
	}
	if next != nil {
		l.send(frameReconcile, appendLenBytes(nil, next))
		return nil
	}
	// Tell the responder this exchange is over, so its next one takes a fresh snapshot.
	l.send(frameReconcile, appendLenBytes(nil, nil))
	l.n.log.Debug("Reconciled", slog.Any("peer", l.peer), slog.Int("have", len(rc.have)), slog.Int("need", len(rc.need)), slog.Duration("took", time.Since(rc.started)))
	l.n.metrics.reconcileDiffs.Add(float64(len(rc.have) + len(rc.need)))
	l.mu.Lock()
	rc.done = true
	l.wantPending += len(rc.need)
	for i := 0; i < len(rc.need); i += maxWantIDs {
		l.wantsOpen++
	}
	l.mu.Unlock()
	for i := 0; i < len(rc.need); i += maxWantIDs {
		batch := rc.need[i:min(i+maxWantIDs, len(rc.need))]
		ids := make([]RecordID, len(batch))
		for j, id := range batch {
			ids[j] = id
		}
		if !l.send(frameWant, marshalIDs(ids)) {
			return nil
		}
	}
	// What the peer lacks reaches it through its own side of the sync: it tails our log from its
	// cursor, or reconciles and asks. Pushing it here too would send it twice. Only the periodic
	// check pushes, since there a difference means something went wrong in the stream.
	if len(rc.have) > 0 && !rc.initial {
		haves := append([][32]byte(nil), rc.have...)
		l.wg.Go(func() { l.push(haves) })
	}
	l.checkReconciled()
	return nil
}

// push sends the peer records it lacks.
func (l *link) push(ids [][32]byte) {
	for _, id := range ids {
		if !l.sendRecord(RecordID(id)) {
			return
		}
	}
}

// sendRecord sends one record (with its body inline when small) outside the log.
func (l *link) sendRecord(id RecordID) bool {
	rec, body, err := l.n.recordByID(id)
	if err != nil {
		return true // replaced since the snapshot: the log carries its successor
	}
	if rec.Kind == KindPut && body == nil && !l.n.store.hasBlob(rec.Hash) {
		return true // a lazy node does not pass on what it cannot serve
	}
	return l.send(frameRecord, recordPayload{record: rec.Marshal(), body: body}.marshal(false))
}

// runWantServer answers the peer's wants in order.
func (l *link) runWantServer() {
	for {
		select {
		case ids := <-l.wants:
			for _, id := range ids {
				if !l.sendRecord(id) {
					return
				}
			}
			if !l.send(frameWantDone, nil) {
				return
			}
		case <-l.ctx.Done():
			return
		}
	}
}

func (l *link) wantDone() {
	l.mu.Lock()
	if l.wantsOpen > 0 {
		l.wantsOpen--
	}
	l.mu.Unlock()
	l.checkReconciled()
}

// checkReconciled finishes a reconciliation once every record asked for has arrived and been
// applied: an initial one then asks the peer to stream its log from its snapshot.
func (l *link) checkReconciled() {
	l.mu.Lock()
	rc := l.recon
	if rc == nil || !rc.done || l.wantsOpen > 0 || l.wantPending > 0 {
		l.mu.Unlock()
		return
	}
	l.recon = nil
	if rc.initial {
		l.tracker = cursorTracker{base: rc.head}
	}
	l.mu.Unlock()
	if rc.initial {
		l.send(frameTailFrom, binary.AppendUvarint(nil, rc.head))
		l.saveCursor()
	}
}

// runAntiEntropy repeats the reconciliation on dialed links, as a check behind the log stream.
func (l *link) runAntiEntropy() {
	t := time.NewTicker(l.n.cfg.AntiEntropyInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			l.startReconcile(false)
		case <-l.ctx.Done():
			return
		}
	}
}
