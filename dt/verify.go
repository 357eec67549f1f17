package dt

import (
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/dt-cdn/dt/blobs"
	"github.com/dt-cdn/dt/dt/internal/hlc"
	"github.com/hdevalence/ed25519consensus"
)

// Checking records from peers: every record is parsed, skipped at once when the node already
// holds it or something newer, and otherwise verified (signatures in batches) before it is
// applied or its body fetched.

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
	if !isTrusted(n.cfg.Keys.Masters, rec.Master) {
		l.needsAudit.Store(true) // it may wait for a grant: see link.audit
		if _, granted := n.grants.get(rec.Master); !granted && rec.Kind == KindPut && len(j.body) == 0 && rec.Size > 0 {
			// No grant record for its signer at all: a body that does not travel inline is not
			// fetched for it, so what a key holder can make a node store for a grant that may
			// never come stays within MaxPendingBytes. Reconciliation brings the record back
			// once the grant is here; link.audit judges its signer meanwhile.
			l.noteUngranted(rec, j.id)
			n.metrics.pendingDropped.Inc()
			n.sendVerdict(l.peer, VerdictPending, rec, j.id, func() string { return pendingReason(rec) })
			settle()
			return nil
		}
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
		case !n.store.hasBlob(rec.Hash) && n.cfg.LazyBodies && !strings.HasPrefix(rec.Key, GrantKeyPrefix):
			// Grants are always fetched: every node judges records by them.
			// Keep the record without its body; Get reports the body as not found.
		case !n.store.hasBlob(rec.Hash):
			l.fetches.put(l.ctx, fetchJob{rec: rec, id: j.id, seq: j.seq, want: j.want})
			return nil // the fetcher settles it
		}
	}
	if err := n.submit(l.ctx, op); err != nil {
		return nil // closing
	}
	settle()
	return nil
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
	if !isTrusted(n.cfg.Keys.Masters, r.Master) && strings.HasPrefix(r.Key, GrantKeyPrefix) {
		return fmt.Errorf("%w: %s is written by masters only; signer %x is not a trusted master", ErrForged, GrantKeyPrefix, r.Master[:6])
	}
	// Any other signer is judged against its grant by the applier (see delegation.go).
	if !signatureVerified && !verifySignature(r) {
		return fmt.Errorf("%w: bad signature", ErrForged)
	}
	if ahead := n.clock.Ahead(hlc.Timestamp(r.Clock)); ahead > n.cfg.MaxClockSkew {
		return fmt.Errorf("%w: %s ahead", ErrClockAhead, ahead.Round(time.Second))
	}
	if int64(r.Size) > n.cfg.MaxObjectSize {
		return fmt.Errorf("%w: body of %d bytes", ErrTooLarge, r.Size)
	}
	return nil
}

// verifySignature checks a record's signature. It uses the ZIP-215 rules of ed25519consensus,
// the rules its batch verification follows too, so a record is accepted or refused the same way
// whether it was checked alone or in a batch, on every node.
func verifySignature(r *Record) bool {
	return len(r.Master) == ed25519.PublicKeySize && len(r.Sig) == ed25519.SignatureSize &&
		ed25519consensus.Verify(r.Master, r.signedBytes(), r.Sig)
}
