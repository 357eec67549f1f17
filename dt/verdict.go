package dt

import (
	"crypto/ed25519"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/time/rate"

	"github.com/dt-cdn/dt/dt/internal/hlc"
)

// Verdicts reported to peers: a node that refuses a record from a peer, or keeps it waiting for
// its signer's grant, tells that peer which record and why in a frameVerdict, so that the
// record's writer learns it at once instead of waiting for a confirmation that never comes.
// The frame travels on the link's control stream, inside the authenticated session, so it is the
// peer's word as much as its acknowledgements are; it is advice about what that peer holds, never
// a change of the table.
//
// A node sends at most one verdict per record it judged, only to the link the record came
// from, and at most VerdictRate per second (burst VerdictBurst) per link: a peer that floods
// records it knows will be refused gets back fewer, smaller frames than it sends. Verdicts over
// the budget are dropped (dt_verdicts_dropped_total); a writer then waits for its confirmation
// as before.
//
// Nodes of releases without verdicts skip the frame, as they skip every frame type they do not
// know (see link.dispatch), and send none: a writer linked only to them waits for acknowledgements
// as before.

// Limits on verdicts.
const (
	// MaxVerdictReason bounds the reason of one verdict, in bytes: it names a key (at most
	// MaxKeySize) and a grant's scope; a longer reason is cut on the sender and refused on the
	// receiver.
	MaxVerdictReason = 512
	// VerdictRate is how many verdicts per second a node sends on one link, after VerdictBurst:
	// a writer's refused publish needs one or two, and a flood of refused records gets no more.
	VerdictRate = 16
	// VerdictBurst is how many verdicts a link may send at once; it is also the length of the
	// link's verdict queue.
	VerdictBurst = 64
	// maxVerdictFrame bounds a frameVerdict payload: the fixed fields, a key and a reason.
	maxVerdictFrame = 1 + 32 + 32 + binary.MaxVarintLen64 + 2*binary.MaxVarintLen16 + MaxKeySize + MaxVerdictReason
	// maxHeldVerdicts bounds the verdicts a node keeps about its own records, for writers
	// waiting on them; the least recently noted are forgotten first.
	maxHeldVerdicts = 1024
	// maxVerdictPeers bounds the peers' verdicts kept about one record.
	maxVerdictPeers = 8
)

// Verdict is what a peer did with a record. ONLY APPEND TO THIS LIST! The numeric values are
// part of the protocol itself; a receiver skips values it does not know.
type Verdict uint8

const (
	// VerdictRefused: the record is refused for good (outside its signer's grant, or its signer
	// holds none once everything the sender had was in).
	VerdictRefused Verdict = 1
	// VerdictPending: the signer has no grant yet; the record waits for one (see
	// MaxPendingRecords).
	VerdictPending Verdict = 2
	// VerdictApplied: a record reported pending was applied once its grant came.
	VerdictApplied Verdict = 3
)

func (v Verdict) String() string {
	switch v {
	case VerdictRefused:
		return "refused"
	case VerdictPending:
		return "pending"
	case VerdictApplied:
		return "applied"
	}
	return fmt.Sprintf("verdict(%d)", uint8(v))
}

var knownVerdicts = []Verdict{VerdictRefused, VerdictPending, VerdictApplied}

// verdictNote is the payload of frameVerdict: a verdict on one record and the reason, in words.
type verdictNote struct {
	verdict Verdict
	id      RecordID
	signer  [32]byte
	clock   uint64
	key     string
	reason  string
}

func (v verdictNote) marshal() []byte {
	b := make([]byte, 0, 80+len(v.key)+len(v.reason))
	b = append(b, byte(v.verdict))
	b = append(b, v.id[:]...)
	b = append(b, v.signer[:]...)
	b = binary.AppendUvarint(b, v.clock)
	b = appendLenBytes(b, []byte(v.key))
	return appendLenBytes(b, []byte(v.reason))
}

// parseVerdict decodes a frameVerdict payload from a peer. A verdict value it does not know is
// returned as it is, for the caller to skip.
func parseVerdict(b []byte) (verdictNote, error) {
	if len(b) > maxVerdictFrame {
		return verdictNote{}, fmt.Errorf("%w: verdict of %d bytes over %d", ErrMalformed, len(b), maxVerdictFrame)
	}
	d := decoder{b: b}
	var v verdictNote
	v.verdict = Verdict(d.byte())
	copy(v.id[:], d.bytes(32))
	copy(v.signer[:], d.bytes(32))
	v.clock = d.uvarint()
	v.key = string(d.lenBytes(MaxKeySize))
	v.reason = string(d.lenBytes(MaxVerdictReason))
	if err := d.finish("verdict"); err != nil {
		return verdictNote{}, err
	}
	if err := checkVerdictText(v); err != nil {
		return verdictNote{}, err
	}
	return v, nil
}

// checkVerdictText refuses a reason that is not printable UTF-8: it ends up in a publisher's
// terminal, and a sender makes it printable (see printable). The key is the record's, matched
// byte for byte and never printed from the frame.
func checkVerdictText(v verdictNote) error {
	if !utf8.ValidString(v.reason) || strings.ContainsFunc(v.reason, isControl) {
		return fmt.Errorf("%w: verdict: reason is not printable UTF-8", ErrMalformed)
	}
	return nil
}

func isControl(r rune) bool { return r < 0x20 || (r >= 0x7f && r < 0xa0) }

// printable replaces what checkVerdictText refuses: a reason quotes a record's key, which may hold
// any bytes.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if isControl(r) {
			return '?'
		}
		return r
	}, strings.ToValidUTF8(s, "?"))
}

// noteOf makes the verdict on rec with its reason, made printable and cut to MaxVerdictReason.
func noteOf(verdict Verdict, rec *Record, id RecordID, reason string) verdictNote {
	reason = printable(reason)
	if len(reason) > MaxVerdictReason {
		reason = strings.ToValidUTF8(reason[:MaxVerdictReason-len("…")], "") + "…"
	}
	v := verdictNote{verdict: verdict, id: id, clock: rec.Clock, key: rec.Key, reason: reason}
	copy(v.signer[:], rec.Master)
	return v
}

// Fingerprint returns the short form of a publisher key used in verdicts and logs: its first 8
// bytes in hex.
func Fingerprint(pub ed25519.PublicKey) string {
	if len(pub) < 8 {
		return hex.EncodeToString(pub)
	}
	return hex.EncodeToString(pub[:8])
}

// refusalReason says in words why g does not cover rec; granted is false when its signer holds
// no grant at all.
func refusalReason(rec *Record, g Grant, granted bool) string {
	fp := Fingerprint(rec.Master)
	clock := hlc.Timestamp(rec.Clock)
	switch {
	case strings.HasPrefix(rec.Key, GrantKeyPrefix):
		return fmt.Sprintf("key %s is written by masters only, not by publisher %s", rec.Key, fp)
	case !granted:
		return fmt.Sprintf("no grant for publisher %s", fp)
	case len(g.Scope) == 0:
		return fmt.Sprintf("the grant of publisher %s was deleted: it grants nothing", fp)
	case clock < g.NotBefore || (g.NotAfter != 0 && clock >= g.NotAfter):
		return fmt.Sprintf("grant of publisher %s not valid at %s (%s)", fp, clock.Time().Format(time.RFC3339Nano), windowOf(g))
	}
	return fmt.Sprintf("%s of key %s is outside the grant of publisher %s (scope %s)", rec.Kind, rec.Key, fp, scopeOf(g))
}

// windowOf describes a grant's window of record clocks.
func windowOf(g Grant) string {
	from := "valid from " + g.NotBefore.Time().Format(time.RFC3339Nano)
	if g.NotAfter == 0 {
		return from
	}
	return from + " until " + g.NotAfter.Time().Format(time.RFC3339Nano)
}

// scopeOf lists a grant's rules as "prefix ops, …".
func scopeOf(g Grant) string {
	parts := make([]string, len(g.Scope))
	for i, r := range g.Scope {
		parts[i] = r.Prefix + " " + r.Ops.String()
	}
	return strings.Join(parts, ", ")
}

// sendVerdict queues a verdict on rec for the link to peer, within the link's budget; reason is
// called only when the verdict goes. It never blocks: it runs on the applier.
func (n *Node) sendVerdict(peer NodeID, verdict Verdict, rec *Record, id RecordID, reason func() string) {
	if peer == (NodeID{}) {
		return // a local write: its writer gets the error itself
	}
	n.mu.RLock()
	l := n.links[peer]
	n.mu.RUnlock()
	if l == nil || l.closed.Load() {
		return
	}
	if !l.verdictBudget.Allow() {
		n.metrics.verdictsDropped.Inc()
		return
	}
	v := noteOf(verdict, rec, id, reason())
	select {
	case l.verdictOut <- appendFrame(nil, frameVerdict, v.marshal()):
		n.metrics.verdictsSent.WithLabelValues(verdict.String()).Inc()
	default:
		n.metrics.verdictsDropped.Inc()
	}
}

// newVerdictBudget returns the per-link budget of verdicts.
func newVerdictBudget() *rate.Limiter { return rate.NewLimiter(VerdictRate, VerdictBurst) }

// peerVerdict is a peer's verdict on one of this node's records.
type peerVerdict struct {
	peer    NodeID
	verdict Verdict
	reason  string
}

// heldVerdicts is what peers said about one record this node wrote.
type heldVerdicts struct {
	key   string
	seq   uint64 // the record's place in this node's log
	peers []peerVerdict
}

// receiveVerdict handles a frameVerdict: a verdict on a record this node wrote and holds as its
// key's current record is kept for the writers waiting on it (see WaitReplicated); any other is
// counted and forgotten, so a peer cannot make the node keep verdicts on records it never wrote
// or holds no more.
func (l *link) receiveVerdict(payload []byte) error {
	v, err := parseVerdict(payload)
	if err != nil {
		return err
	}
	n := l.n
	if !slices.Contains(knownVerdicts, v.verdict) {
		n.metrics.verdictsIgnored.Inc()
		return nil // a verdict of a later release
	}
	n.mu.RLock()
	e := n.index[v.key]
	n.mu.RUnlock()
	if e == nil || e.id != v.id || e.writer != n.id {
		n.metrics.verdictsIgnored.Inc()
		return nil
	}
	n.metrics.verdictsReceived.WithLabelValues(v.verdict.String()).Inc()
	if !n.holdVerdict(e, peerVerdict{peer: l.peer, verdict: v.verdict, reason: v.reason}) {
		return nil // said before: a peer repeating itself costs a lookup
	}
	n.log.Info("Peer's verdict on a record", slog.Any("peer", l.peer), slog.String("key", v.key),
		slog.String("verdict", v.verdict.String()), slog.String("reason", v.reason))
	if v.verdict == VerdictRefused {
		n.emitError(&VerdictError{Key: v.key, Peer: l.peer, Verdict: v.verdict, Reason: v.reason}, "peer "+l.peer.Short(), nil)
	}
	n.wakeAcks()
	return nil
}

// holdVerdict keeps a peer's verdict on a record, replacing that peer's earlier one. It
// reports whether anything changed.
func (n *Node) holdVerdict(e *indexEntry, pv peerVerdict) bool {
	n.verdictMu.Lock()
	defer n.verdictMu.Unlock()
	held, ok := n.verdicts.get(e.id)
	if !ok {
		n.verdicts.put(e.id, &heldVerdicts{key: e.key, seq: e.seq, peers: []peerVerdict{pv}})
		return true
	}
	for i := range held.peers {
		if held.peers[i].peer == pv.peer {
			changed := held.peers[i] != pv
			held.peers[i] = pv
			return changed
		}
	}
	if len(held.peers) >= maxVerdictPeers {
		return false
	}
	held.peers = append(held.peers, pv)
	return true
}

// verdictsForgotten counts the records whose verdicts were forgotten for room.
func (n *Node) verdictsForgotten() uint64 {
	n.verdictMu.Lock()
	defer n.verdictMu.Unlock()
	return n.verdicts.evicted
}

// verdictsOn returns the peers' verdicts on a record: the first refusal, if any, and the peers
// that keep it pending.
func (n *Node) verdictsOn(id RecordID) (refused *VerdictError, pending []peerVerdict) {
	n.verdictMu.Lock()
	var peers []peerVerdict
	if held, ok := n.verdicts.get(id); ok {
		peers = slices.Clone(held.peers)
	}
	n.verdictMu.Unlock()
	for _, pv := range peers {
		switch pv.verdict {
		case VerdictRefused:
			if refused == nil {
				refused = &VerdictError{Peer: pv.peer, Verdict: pv.verdict, Reason: pv.reason}
			}
		case VerdictPending:
			pending = append(pending, pv)
		}
	}
	return refused, pending
}

// refusedUpTo returns a peer's refusal of a record this node wrote at or before seq in its log
// and still holds as its key's current record, the earliest such one; nil when there is none. A
// peer's acknowledgement covers the log up to a point, so a writer waiting on the last record
// of a batch learns that an earlier one was refused.
func (n *Node) refusedUpTo(seq uint64) *VerdictError {
	type candidate struct {
		id   RecordID
		held heldVerdicts
		pv   peerVerdict
	}
	var found []candidate
	n.verdictMu.Lock()
	for el := n.verdicts.order.Front(); el != nil; el = el.Next() {
		ent := el.Value.(lruEntry[RecordID, *heldVerdicts])
		if ent.val.seq > seq {
			continue
		}
		if i := slices.IndexFunc(ent.val.peers, func(p peerVerdict) bool { return p.verdict == VerdictRefused }); i >= 0 {
			found = append(found, candidate{ent.key, *ent.val, ent.val.peers[i]})
		}
	}
	n.verdictMu.Unlock()
	var first *VerdictError
	var firstSeq uint64
	n.mu.RLock()
	defer n.mu.RUnlock()
	for _, c := range found {
		if e := n.index[c.held.key]; e != nil && e.id == c.id && (first == nil || c.held.seq < firstSeq) {
			first, firstSeq = &VerdictError{Key: c.held.key, Peer: c.pv.peer, Verdict: VerdictRefused, Reason: c.pv.reason}, c.held.seq
		}
	}
	return first
}

// VerdictError is a peer's verdict on a record this node wrote: refused (it wraps ErrRefused)
// or kept waiting for its signer's grant (it wraps ErrPending). Reason is the peer's, in words.
type VerdictError struct {
	Key     string
	Peer    NodeID
	Verdict Verdict
	Reason  string
}

func (e *VerdictError) Error() string {
	if e.Verdict == VerdictPending {
		return fmt.Sprintf("dt: %s waits for a grant on peer %s: %s", e.Key, e.Peer.Short(), e.Reason)
	}
	return fmt.Sprintf("dt: %s refused by peer %s: %s", e.Key, e.Peer.Short(), e.Reason)
}

// Unwrap returns ErrRefused or ErrPending.
func (e *VerdictError) Unwrap() error {
	if e.Verdict == VerdictPending {
		return ErrPending
	}
	return ErrRefused
}
