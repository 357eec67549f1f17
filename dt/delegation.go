package dt

import (
	"crypto/ed25519"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	bolt "go.etcd.io/bbolt"

	"github.com/dt-cdn/dt/dt/internal/hlc"
)

// Records signed by keys other than the trusted masters are judged by the applier against their
// signer's grant (see GrantKeyPrefix), at the moment they would be committed. The applier is the
// one goroutine that changes the table and the only writer of the grants, so a record and a
// grant change never race: every record is judged against the grant the table holds at that
// point of the commit order. The verdict is then the same on every node whatever the order things
// arrive in, because it depends only on the grant record that wins (the newest, on every node)
// and the record's own clock:
//
//   - no record at all under the signer's grant key: the record waits in the node's pending set (at most
//     MaxPendingRecords and MaxPendingBytes, in memory) and is judged again when a grant for its
//     signer is committed;
//   - the grant covers the record's key, operation and clock: applied;
//   - otherwise: refused with ErrOutsideGrant, which names the rule; the link that brought it
//     stays up (the sender may only have been behind on a revocation).
//
// When a grant changes (a new grant, a revocation, a delete), the applier judges again, in the
// same transaction, every current record its signer wrote: those the new grant does not cover are
// dropped from the table, with removal events, and the pending records of that signer are judged.
// A dropped record may have replaced an older one on this node; nodes that never applied it still
// hold that older record, so the node then reconciles with every linked peer (range-based set
// reconciliation) and takes it back from them. When every node had applied the dropped record,
// no node holds the older one any more and the key stays absent everywhere: the same state on
// every node, though not the one before the revoked write. A deleted or malformed grant grants
// nothing: it revokes all its key wrote, and that key's records are refused, not kept waiting. Judging again scans the log once per changed grant; grants change rarely.
//
// A record waits for its grant only while the grant may still be on its way. A peer streams its
// log in order, and a node applies a delegated record only after its grant, so a grant comes
// before the records it covers unless a newer grant record (a revocation) replaced it and moved
// to the end of the peer's log. Once a link has caught up with the peer's log, a record that
// peer sent whose signer still has no grant is one the peer holds no grant for either: it is
// forged (ErrForged), and the link is dropped with a strike against the peer's address, as for a
// record signed by an unknown key (see auditPending).
//
// Records under GrantKeyPrefix are a master's alone: one signed by any other key is forged
// (ErrForged), whatever grant its signer holds.

// Limits on records waiting for their signer's grant. Any holder of the network key can make up
// signing keys, so what it can make a node keep for a grant that may never come is bounded.
const (
	// MaxPendingRecords bounds the records a node keeps waiting for a grant. A publish sends a
	// few records per changed file before its grant may have reached every node; past the limit,
	// records are dropped (counted in dt_records_pending_dropped_total, logged once per burst)
	// and come back by reconciliation from a node that applied them once the grant is there.
	MaxPendingRecords = 4096
	// MaxPendingBytes bounds the inline bodies those records carry; bodies in the blob store
	// count by their record alone.
	MaxPendingBytes = 16 << 20
)

// errNoGrant is the applier's verdict on a record whose signer has no grant yet: keep it pending.
var errNoGrant = errors.New("dt: signer has no grant yet")

// grantTable is the grants the table holds, by grantee. The applier writes it after each commit;
// writers read it to refuse at once what their own grant does not cover.
type grantTable struct {
	mu    sync.RWMutex
	byKey map[[32]byte]Grant // guarded by mu
}

func newGrantTable() *grantTable { return &grantTable{byKey: map[[32]byte]Grant{}} }

func (t *grantTable) get(pub ed25519.PublicKey) (Grant, bool) {
	if len(pub) != ed25519.PublicKeySize {
		return Grant{}, false
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	g, ok := t.byKey[[32]byte(pub)]
	return g, ok
}

// set publishes a batch's grant changes.
func (t *grantTable) set(changes map[[32]byte]*Grant) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for k, g := range changes {
		t.byKey[k] = *g
	}
}

// list returns every grant held.
func (t *grantTable) list() []Grant {
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := make([]Grant, 0, len(t.byKey))
	for _, g := range t.byKey {
		if len(g.Scope) > 0 {
			out = append(out, g)
		}
	}
	return out
}

// Grants returns the grants the table holds, in no particular order: those a trusted master
// wrote in canonical form. A deleted or malformed grant grants nothing and is not listed.
func (n *Node) Grants() []Grant { return n.grants.list() }

// pendingRecords are the records waiting for their signer's grant. Only the applier uses it.
type pendingRecords struct {
	bySigner map[[32]byte][]applyOp
	ids      map[RecordID]struct{} // the records in bySigner: peers resend what is not applied
	count    int
	bytes    int
}

// notePending publishes the pending set's size to the metrics.
func (n *Node) notePending(p *pendingRecords) {
	n.pendingCount.Store(int64(p.count))
	n.pendingBytes.Store(int64(p.bytes))
}

// grantee returns the public key a grant's table key names, and false for any other key.
func grantee(key string) ([32]byte, bool) {
	rest, ok := strings.CutPrefix(key, GrantKeyPrefix)
	if !ok || len(rest) != 2*ed25519.PublicKeySize || strings.ToLower(rest) != rest {
		return [32]byte{}, false
	}
	b, err := hex.DecodeString(rest)
	if err != nil {
		return [32]byte{}, false
	}
	return [32]byte(b), true
}

// loadGrants reads the grants the table holds, at open.
func (n *Node) loadGrants() error {
	changes := map[[32]byte]*Grant{}
	for key, e := range n.index {
		pub, ok := grantee(key)
		if !ok {
			continue
		}
		g := Grant{Key: ed25519.PublicKey(pub[:])}
		if e.kind == KindPut {
			body, err := n.store.bodyOf(e.seq)
			if err != nil {
				return fmt.Errorf("dt: read grant %s: %w", key, err)
			}
			if parsed, err := CheckGrantRecord(key, body); err == nil {
				g = parsed
			}
		}
		changes[pub] = &g
	}
	n.grants.set(changes)
	return nil
}

// verdict judges a record against the masters and the grants as of this point of the batch.
func (w *batchWrite) verdict(rec *Record) error {
	if isTrusted(w.n.cfg.Keys.Masters, rec.Master) {
		return nil
	}
	if strings.HasPrefix(rec.Key, GrantKeyPrefix) {
		return fmt.Errorf("%w: %s is written by masters only", ErrForged, GrantKeyPrefix)
	}
	g, ok := w.grantOf(rec.Master)
	if !ok {
		return errNoGrant
	}
	return g.Covers(rec.Key, rec.Kind, hlc.Timestamp(rec.Clock))
}

// grantOf returns the signer's grant, this batch's changes included.
func (w *batchWrite) grantOf(pub ed25519.PublicKey) (Grant, bool) {
	if len(pub) != ed25519.PublicKeySize {
		return Grant{}, false
	}
	if g, ok := w.grantChanges[[32]byte(pub)]; ok {
		return *g, true
	}
	return w.n.grants.get(pub)
}

// noteGrant records that an applied record changed a grant (a put or a delete under
// GrantKeyPrefix), to be judged again at the end of the batch.
func (w *batchWrite) noteGrant(op applyOp) {
	pub, ok := grantee(op.rec.Key)
	if !ok {
		return
	}
	// A deleted or malformed grant is a grant of nothing: the signer's records are then refused,
	// not kept waiting for a grant that is known.
	g := &Grant{Key: ed25519.PublicKey(pub[:])}
	if op.rec.Kind == KindPut {
		body := op.body
		if body == nil {
			var err error
			if body, err = w.n.store.blobBody(op.rec.Hash); err != nil {
				w.n.log.Warn("Grant body unreadable: it grants nothing", slog.String("key", op.rec.Key), slog.Any("err", err))
			}
		}
		if parsed, err := CheckGrantRecord(op.rec.Key, body); err == nil {
			g = &parsed
		} else if body != nil {
			w.n.log.Warn("Malformed grant: it grants nothing", slog.String("key", op.rec.Key), slog.Any("err", err))
		}
	}
	if w.grantChanges == nil {
		w.grantChanges = map[[32]byte]*Grant{}
	}
	if _, seen := w.grantChanges[pub]; !seen {
		w.grantOrder = append(w.grantOrder, pub)
	}
	w.grantChanges[pub] = g
}

// judge takes a record op through its verdict: applied, kept pending or refused. It reports
// whether the record was applied.
func (w *batchWrite) judge(tx *bolt.Tx, op applyOp) (applied bool, refused error, err error) {
	switch v := w.verdict(op.rec); {
	case v == nil:
		applied, err = w.applyRecord(tx, op)
		return applied, nil, err
	case errors.Is(v, errNoGrant) && op.done == nil:
		w.keepPending(tx, op)
		return false, nil, nil
	default:
		w.discard(tx, op)
		w.refusals = append(w.refusals, refusal{op: op, err: v})
		g, granted := w.grantOf(op.rec.Master)
		w.tell(op, VerdictRefused, func() string { return refusalReason(op.rec, g, granted) })
		return false, v, nil
	}
}

// refusal is a record the batch refused, reported after the commit.
type refusal struct {
	op  applyOp
	err error
}

// outVerdict is a verdict for the peer a record came from. Its reason is put in words only when
// the link's budget lets the verdict go.
type outVerdict struct {
	op      applyOp
	verdict Verdict
	reason  func() string
}

// tell queues a verdict on a record from a peer, to be sent after the commit.
func (w *batchWrite) tell(op applyOp, v Verdict, reason func() string) {
	if op.origin != (NodeID{}) {
		w.verdicts = append(w.verdicts, outVerdict{op: op, verdict: v, reason: reason})
	}
}

// pendingReason is the reason given with VerdictPending.
func pendingReason(rec *Record) string {
	return fmt.Sprintf("no grant for publisher %s yet: the record waits for one", Fingerprint(rec.Master))
}

// keepPending keeps a record until its signer's grant arrives, within the limits.
func (w *batchWrite) keepPending(tx *bolt.Tx, op applyOp) {
	p := &w.n.pending
	if _, dup := p.ids[op.id]; dup {
		return
	}
	if p.count+1 > MaxPendingRecords || p.bytes+len(op.body) > MaxPendingBytes {
		w.n.metrics.pendingDropped.Inc()
		w.n.pendingLog.Hit(w.n.ctx, slog.String("key", op.rec.Key))
		w.discard(tx, op)
		return
	}
	if p.bySigner == nil {
		p.bySigner, p.ids = map[[32]byte][]applyOp{}, map[RecordID]struct{}{}
	}
	p.ids[op.id] = struct{}{}
	w.tell(op, VerdictPending, func() string { return pendingReason(op.rec) })
	signer := [32]byte(op.rec.Master)
	p.bySigner[signer] = append(p.bySigner[signer], op)
	p.count++
	p.bytes += len(op.body)
	w.n.notePending(p)
}

// discard lets go of a record that will not be applied: its body, stored in the blob store
// before the record was judged, goes unless a record names it.
func (w *batchWrite) discard(tx *bolt.Tx, op applyOp) {
	if op.rec.Kind == KindPut && op.body == nil && op.rec.Size > 0 &&
		tx.Bucket(bucketBodies).Get(op.rec.Hash[:]) == nil {
		w.unrefd = append(w.unrefd, op.rec.Hash)
	}
}

// regrant judges again, after a grant changed, the records its key wrote and those it has
// pending. It runs at the end of the batch, within its transaction.
func (w *batchWrite) regrant(tx *bolt.Tx, pub [32]byte) error {
	if err := w.dropUncovered(tx, pub); err != nil {
		return err
	}
	p := &w.n.pending
	ops := p.bySigner[pub]
	delete(p.bySigner, pub)
	for _, op := range ops {
		delete(p.ids, op.id)
		p.count--
		p.bytes -= len(op.body)
		w.n.notePending(p)
		applied, _, err := w.judge(tx, op)
		if err != nil {
			return err
		}
		if applied {
			w.tell(op, VerdictApplied, func() string { return "the signer's grant came" })
		}
	}
	return nil
}

// dropUncovered removes from the table the current records pub signed that its grant, as this
// batch leaves it, no longer covers.
func (w *batchWrite) dropUncovered(tx *bolt.Tx, pub [32]byte) error {
	records, bodies := tx.Bucket(bucketRecords), tx.Bucket(bucketBodies)
	var victims []recordValue
	err := records.ForEach(func(k, raw []byte) error {
		v, _, err := unmarshalRecordValue(binary.BigEndian.Uint64(k), raw)
		if err != nil {
			return err
		}
		if [32]byte(v.rec.Master) == pub && w.verdict(v.rec) != nil {
			victims = append(victims, v)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("dt: judge records again: %w", err)
	}
	for _, v := range victims {
		old := w.lookup(v.rec.Key)
		if old == nil || old.seq != v.seq {
			continue
		}
		ch := change{key: v.rec.Key, old: old}
		if old.kind == KindPut {
			if w.notify {
				ch.oldBody = cloneBody(v.body)
			}
			if v.body == nil {
				ch.oldInBlob = true
				if err := refBlob(bodies, old.hash, -1); err != nil {
					return err
				}
				if bodies.Get(old.hash[:]) == nil {
					w.unrefd = append(w.unrefd, old.hash)
				}
			}
		}
		if err := records.Delete(seqKey(old.seq)); err != nil {
			return err
		}
		w.overlay[v.rec.Key] = nil
		w.changes = append(w.changes, ch)
		w.dropped++
	}
	return nil
}

// afterGrants publishes a committed batch's grant changes and reports its refusals. When records
// were dropped, the node reconciles with its peers to take back what they replaced.
func (n *Node) afterGrants(w *batchWrite) {
	if len(w.grantChanges) > 0 {
		n.grants.set(w.grantChanges)
	}
	for _, v := range w.verdicts {
		n.sendVerdict(v.op.origin, v.verdict, v.op.rec, v.op.id, v.reason)
	}
	for _, r := range w.refusals {
		n.metrics.recordsRefused.Inc()
		if r.op.origin != (NodeID{}) {
			n.refusedLog.Hit(n.ctx, slog.String("key", r.op.rec.Key), slog.Any("err", r.err))
			n.emitError(fmt.Errorf("dt: record %s from %s: %w", r.op.rec.Key, r.op.origin.Short(), r.err), "peer "+r.op.origin.Short(), nil)
		}
	}
	if w.dropped == 0 {
		return
	}
	n.metrics.recordsDropped.Add(float64(w.dropped))
	n.log.Info("Records dropped by a grant change; reconciling with peers", slog.Int("count", w.dropped))
	n.mu.RLock()
	links := make([]*link, 0, len(n.links))
	for _, l := range n.links {
		links = append(links, l)
	}
	n.mu.RUnlock()
	for _, l := range links {
		// Not on the applier: starting a reconciliation waits for the link's writer.
		if l.ctx.Err() == nil {
			l.wg.Go(func() { l.startReconcile(false) })
		}
	}
}

// auditPending drops the records peer sent whose signer has no grant, once the link caught up
// with the peer's log, and reports them as forged.
func (w *batchWrite) auditPending(tx *bolt.Tx, peer NodeID) error {
	p := &w.n.pending
	var forged *Record
	for signer, ops := range p.bySigner {
		if _, ok := w.grantOf(ed25519.PublicKey(signer[:])); ok {
			continue
		}
		kept := ops[:0]
		for _, op := range ops {
			if op.origin != peer {
				kept = append(kept, op)
				continue
			}
			forged = op.rec
			w.tell(op, VerdictRefused, func() string { return refusalReason(op.rec, Grant{}, false) })
			delete(p.ids, op.id)
			p.count--
			p.bytes -= len(op.body)
			w.discard(tx, op)
		}
		if len(kept) == 0 {
			delete(p.bySigner, signer)
		} else {
			p.bySigner[signer] = kept
		}
	}
	w.n.notePending(p)
	if forged == nil {
		return nil
	}
	// The link's cursor moved past the forged records when they were kept pending. Forgetting
	// it makes the next link with this peer reconcile in full, so the peer offers them again
	// and earns a strike each time, as a forger whose record is refused at once does.
	if err := tx.Bucket(bucketCursors).Delete(peer[:]); err != nil {
		return fmt.Errorf("dt: forget the cursor of %s: %w", peer.Short(), err)
	}
	return fmt.Errorf("record %s: %w: signer %x is not a trusted master and holds no grant", forged.Key, ErrForged, forged.Master[:6])
}
