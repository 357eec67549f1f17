package dt

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/dt-cdn/dt/blobs"
	"github.com/dt-cdn/dt/dt/internal/rbsr"
	"github.com/hdevalence/ed25519consensus"
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

// receiveRecord handles a record from the peer: a log entry, or one outside the log (an answer to
// a want, or a push). Records the node already holds, or holds something newer for, are settled
// here at once; the rest go to the node's verifiers, so signature checks use every core while the
// reader goes on reading.
func (l *link) receiveRecord(p recordPayload, outsideLog bool) error {
	rec, err := UnmarshalRecord(p.record)
	if err != nil {
		return err
	}
	id := rec.ID()
	want := false
	if outsideLog {
		l.mu.Lock()
		want = l.wantPending > 0
		l.mu.Unlock()
	}
	if l.n.holds(rec, id) {
		l.handled(p.seq, want, false)
		return nil
	}
	l.handled(p.seq, false, true) // pending until verified and submitted
	select {
	case l.n.verifyCh <- verifyJob{l: l, rec: rec, id: id, body: p.body, seq: p.seq, want: want}:
	case <-l.ctx.Done():
	}
	return nil
}

// verifyJob is a record waiting for its checks.
type verifyJob struct {
	l    *link
	rec  *Record
	id   RecordID
	body []byte
	seq  uint64
	want bool
}

// maxVerifyBatch bounds the signatures checked in one batch.
const maxVerifyBatch = 64

// runVerifier checks records from every link and submits the good ones. It takes whatever is
// queued (up to maxVerifyBatch) and checks the signatures as one batch, which costs about half as
// much per signature as checking them one by one; if the batch fails, each is checked alone so the
// forged one is found.
func (n *Node) runVerifier() {
	batch := make([]verifyJob, 0, maxVerifyBatch)
	for {
		select {
		case job := <-n.verifyCh:
			batch = append(batch[:0], job)
		case <-n.ctx.Done():
			return
		}
	fill:
		for len(batch) < maxVerifyBatch {
			select {
			case job := <-n.verifyCh:
				batch = append(batch, job)
			default:
				break fill
			}
		}
		verified := verifyBatch(batch)
		for _, job := range batch {
			if job.l.ctx.Err() != nil {
				continue
			}
			if err := job.l.accept(job, verified); err != nil {
				job.l.fail(err)
			}
		}
	}
}

// verifyBatch reports whether every record of the batch carries a valid signature by the key it
// names (whether that key is trusted is checked apart).
func verifyBatch(jobs []verifyJob) bool {
	if len(jobs) < 2 {
		return false
	}
	bv := ed25519consensus.NewBatchVerifier()
	for _, j := range jobs {
		if len(j.rec.Master) != ed25519.PublicKeySize || len(j.rec.Sig) != ed25519.SignatureSize {
			return false
		}
		bv.Add(j.rec.Master, j.rec.signedBytes(), j.rec.Sig)
	}
	return bv.Verify()
}

// accept checks a record and its body, then submits it, or queues a fetch of its body.
func (l *link) accept(j verifyJob, signatureVerified bool) error {
	n, rec := l.n, j.rec
	settle := func() { l.settle(j.seq, j.want) }
	if err := n.checkRecord(rec, signatureVerified); err != nil {
		if errors.Is(err, ErrClockAhead) {
			n.emitError(fmt.Errorf("dt: record %s from %s: %w", rec.Key, l.peer.Short(), err), "peer "+l.remote.String(), nil)
			settle()
			return nil
		}
		return fmt.Errorf("record %s: %w", rec.Key, err)
	}
	op := applyOp{rec: rec, id: j.id, origin: l.peer}
	if rec.Kind == KindPut {
		switch {
		case len(j.body) > 0 || rec.Size == 0:
			if uint64(len(j.body)) != rec.Size || sha256.Sum256(j.body) != rec.Hash {
				return fmt.Errorf("record %s: %w", rec.Key, ErrBodyMismatch)
			}
			if len(j.body) > n.cfg.InlineBodyMax {
				// Store it the way the sender should have sent it.
				if err := n.store.blobs.PutBytes(blobs.Hash(rec.Hash), j.body); err != nil {
					l.close(err)
					return nil
				}
			} else {
				op.body = j.body
			}
		case !n.store.hasBlob(rec.Hash) && n.cfg.LazyBodies:
			// Keep the record without its body; Get reports the body as not found.
		case !n.store.hasBlob(rec.Hash):
			select {
			case l.fetches <- fetchJob{rec: rec, id: j.id, seq: j.seq, want: j.want}:
			case <-l.ctx.Done():
			}
			return nil // the fetcher settles it
		}
	}
	if err := n.submit(l.ctx, op); err != nil {
		return nil // closing
	}
	settle()
	return nil
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

// holds reports whether the node already has rec, or a record for its key that wins over it: then
// rec needs no checking at all (this keeps floods of duplicates cheap).
func (n *Node) holds(rec *Record, id RecordID) bool {
	n.mu.RLock()
	e := n.index[rec.Key]
	n.mu.RUnlock()
	return e != nil && (e.id == id || !rec.newer(id, e))
}

// checkRecord validates a record from the network before it is applied or relayed.
func (n *Node) checkRecord(r *Record, signatureVerified bool) error {
	if err := r.checkShape(); err != nil {
		return err
	}
	if r.Table != n.table || r.Epoch != n.cfg.Epoch {
		return ErrWrongTable
	}
	if !isTrusted(n.cfg.Keys.Masters, r.Master) {
		return fmt.Errorf("%w: signer %x is not a trusted master", ErrForged, r.Master[:6])
	}
	if !signatureVerified && !verifySignature(r) {
		return fmt.Errorf("%w: bad signature", ErrForged)
	}
	if ahead := n.clock.Ahead(r.Clock); ahead > n.cfg.MaxClockSkew {
		return fmt.Errorf("%w: %s ahead", ErrClockAhead, ahead.Round(time.Second))
	}
	if int64(r.Size) > n.cfg.MaxObjectSize {
		return fmt.Errorf("%w: body of %d bytes", ErrTooLarge, r.Size)
	}
	return nil
}

// runFetcher fetches bodies that did not travel inline, from the peer that sent their record.
func (l *link) runFetcher() {
	for {
		var job fetchJob
		select {
		case job = <-l.fetches:
		case <-l.ctx.Done():
			return
		}
		if !l.n.store.hasBlob(job.rec.Hash) {
			if err := l.fetchBody(job.rec); err != nil {
				if l.ctx.Err() == nil {
					if errors.Is(err, ErrBodyMismatch) || errors.Is(err, ErrMalformed) {
						l.fail(err)
					} else {
						l.close(fmt.Errorf("dt: fetch body of %s: %w", job.rec.Key, err))
					}
				}
				return
			}
		}
		if err := l.n.submit(l.ctx, applyOp{rec: job.rec, id: job.id, origin: l.peer}); err != nil {
			return
		}
		l.settle(job.seq, job.want)
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
	l.mu.Unlock()
	l.checkReconciled()
	l.checkCaughtUp()
	if idle {
		l.saveCursor()
	}
}

// Body streams: the requester writes bodyRequest and the 32-byte hash; the server answers with a
// status byte and, for bodyFound, a uvarint length and the body.
const (
	bodyRequest  = 1
	bodyFound    = 0
	bodyNotFound = 1
)

func (l *link) fetchBody(rec *Record) error {
	s, err := l.sess.OpenStream()
	if err != nil {
		return err
	}
	defer s.Close()
	_ = s.SetDeadline(time.Now().Add(bodyStreamTimeout))
	if _, err := s.Write(append([]byte{bodyRequest}, rec.Hash[:]...)); err != nil {
		return err
	}
	r := &deadlineReader{s: s}
	var status [1]byte
	if _, err := io.ReadFull(r, status[:]); err != nil {
		return err
	}
	if status[0] != bodyFound {
		return fmt.Errorf("peer does not have body %x", rec.Hash[:6])
	}
	size, err := binary.ReadUvarint(byteReader{r})
	if err != nil {
		return fmt.Errorf("%w: body length: %w", ErrMalformed, err)
	}
	if size != rec.Size {
		return fmt.Errorf("%w: body of %d bytes, record says %d", ErrBodyMismatch, size, rec.Size)
	}
	if _, err := l.n.store.blobs.Put(blobs.Hash(rec.Hash), io.LimitReader(r, int64(size))); err != nil {
		if errors.Is(err, blobs.ErrHashMismatch) {
			return fmt.Errorf("%w: %w", ErrBodyMismatch, err)
		}
		return err
	}
	l.n.metrics.bodiesFetched.Inc()
	return nil
}

// deadlineReader extends a stream's deadline as data arrives, so a large body may take as long as
// it needs while a stalled one fails after bodyStreamTimeout.
type deadlineReader struct {
	s interface {
		io.Reader
		SetDeadline(time.Time) error
	}
}

func (r *deadlineReader) Read(p []byte) (int, error) {
	n, err := r.s.Read(p)
	if n > 0 {
		_ = r.s.SetDeadline(time.Now().Add(bodyStreamTimeout))
	}
	return n, err
}

type byteReader struct{ io.Reader }

func (b byteReader) ReadByte() (byte, error) {
	var p [1]byte
	_, err := io.ReadFull(b.Reader, p[:])
	return p[0], err
}

// serveBodies answers the peer's body streams.
func (l *link) serveBodies() {
	for {
		s, err := l.sess.AcceptStream()
		if err != nil {
			return
		}
		l.wg.Go(func() {
			defer s.Close()
			_ = s.SetDeadline(time.Now().Add(bodyStreamTimeout))
			var req [33]byte
			if _, err := io.ReadFull(s, req[:]); err != nil || req[0] != bodyRequest {
				return
			}
			var h [32]byte
			copy(h[:], req[1:])
			if err := l.n.writeBody(s, h); err != nil {
				l.n.log.Debug("Serve body", slog.Any("err", err))
			}
		})
	}
}

// writeBody sends one body on a body stream.
func (n *Node) writeBody(s interface {
	io.Writer
	SetDeadline(time.Time) error
}, h [32]byte) error {
	f, err := n.store.blobs.Open(blobs.Hash(h))
	if err != nil {
		// Only bodies in the blob store travel on body streams; inline ones go with their records.
		_, _ = s.Write([]byte{bodyNotFound})
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if _, err := s.Write(binary.AppendUvarint([]byte{bodyFound}, uint64(st.Size()))); err != nil {
		return err
	}
	buf := make([]byte, 64<<10)
	for {
		k, rerr := f.Read(buf)
		if k > 0 {
			_ = s.SetDeadline(time.Now().Add(bodyStreamTimeout))
			if _, err := s.Write(buf[:k]); err != nil {
				return err
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return rerr
		}
	}
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
	select {
	case <-l.n.synced:
		return
	default:
	}
	l.wg.Go(func() {
		done := make(chan applyResult, 1)
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
	l.tracker.saved = c
	l.mu.Unlock()
	// The cursor op queues behind every record op this link submitted, so it commits with or
	// after them: a cursor never runs ahead of the records it covers.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	op := applyOp{cursor: &cursorUpdate{peer: l.peer, incarnation: l.hello.incarnation, seq: c}, committed: func() {
		l.ackOut.Store(c)
		select {
		case l.ackKick <- struct{}{}:
		default:
		}
	}}
	select {
	case l.n.applyCh <- op:
	case <-ctx.Done():
	case <-l.n.ctx.Done():
	}
}

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
		set, head := l.n.snapshot()
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

// verifySignature checks a record's signature. It uses the ZIP-215 rules of ed25519consensus,
// the rules its batch verification follows too, so a record is accepted or refused the same way
// whether it was checked alone or in a batch, on every node.
func verifySignature(r *Record) bool {
	return len(r.Master) == ed25519.PublicKeySize && len(r.Sig) == ed25519.SignatureSize &&
		ed25519consensus.Verify(r.Master, r.signedBytes(), r.Sig)
}
