package rbsr

import (
	"errors"
	"fmt"
	"math"
)

const (
	// MinFrameSizeLimit is the smallest non-zero frame size limit. Smaller limits are raised to it:
	// the reference implementation refuses them, and one split range (16 fingerprints or up to
	// 31 ids) must always fit in a message for reconciliation to make progress.
	MinFrameSizeLimit = 4096

	// MaxRanges is the most ranges one message may hold. Received messages with more are
	// rejected as malformed; messages produced are cut short before they reach it, like at the
	// frame size limit. Each range costs the receiver a binary search and possibly 16 SHA-256
	// computations, so the cap bounds the work one message can ask for. Two sets of n items that
	// share nothing need between n/32 and n/2 ranges in the largest message, so with unlimited
	// frames the cap can bind above about 100,000 items; like a frame size limit, it then costs
	// more round trips, never correctness. A frame size limit of 64 KiB or less binds first.
	MaxRanges = 1 << 16

	// buckets is how many sub-ranges a range whose fingerprints differ is split into; ranges of
	// fewer than 2*buckets items are sent as id lists instead (as the reference implementation).
	buckets = 16

	// cutReserve is kept free below the frame size limit while ranges are added, for what ends a
	// message cut short: a pending Skip range (a bound and a mode byte) and the closing
	// Fingerprint range to infinity (2-byte bound, mode byte, fingerprint).
	cutReserve = maxBoundLen + 1 + 2 + 1 + fingerprintSize
)

var (
	errOrder         = errors.New("bound below the previous one")
	errAfterInfinity = errors.New("range after the infinity bound")
	errMode          = errors.New("unknown mode")
	errTooMany       = errors.New("more than MaxRanges ranges")
)

// Initiator drives a reconciliation from one side and learns both differences. It is not safe for
// concurrent use.
type Initiator struct {
	p     peer
	state initState
	// reported holds every id returned so far. A message cut short at the frame size limit
	// closes with one fingerprint up to infinity, which re-opens ranges the initiator had already
	// settled further on; their ids come back in a later round and are dropped here.
	reported map[[idSize]byte]struct{}
}

type initState int

const (
	stateNew initState = iota
	stateRunning
	stateDone
)

// NewInitiator returns an initiator over s. frameSizeLimit bounds every message it produces: 0
// means unlimited, other values below [MinFrameSizeLimit] (negative ones included) are raised to
// it. A smaller limit means more, smaller round trips.
func NewInitiator(s *Set, frameSizeLimit int) *Initiator {
	return &Initiator{
		p:        peer{set: s, limit: normLimit(frameSizeLimit), initiator: true, maxRanges: MaxRanges},
		reported: make(map[[idSize]byte]struct{}),
	}
}

// Initiate returns the first message to send to the responder: the whole set as 16 fingerprinted
// buckets, or as an id list when it holds fewer than 32 items. It may be called only once.
func (i *Initiator) Initiate() ([]byte, error) {
	if i.state != stateNew {
		return nil, fmt.Errorf("%w: Initiate called twice", ErrState)
	}
	i.state = stateRunning
	out := newEncoder()
	i.p.split(&out, 0, i.p.set.Len(), infinity)
	return out.buf, nil
}

// Reconcile consumes the responder's reply. It returns the next message to send (nil when
// finished), and appends to have (ids the initiator has and the responder lacks) and need (ids the
// responder has and the initiator lacks). The ids returned by one call are those settled by that
// message; over a whole run each id is reported at most once, and with an honest responder every
// differing id is reported.
//
// A reply that cannot be parsed yields an error wrapping [ErrMalformed] or
// [ErrUnsupportedVersion] and ends the run: later calls return [ErrState].
func (i *Initiator) Reconcile(msg []byte) (next []byte, have, need [][32]byte, err error) {
	if i.state != stateRunning {
		return nil, nil, nil, fmt.Errorf("%w: Reconcile without a message in flight", ErrState)
	}
	var d diff
	next, err = i.p.process(msg, &d)
	if err != nil || next == nil {
		i.state = stateDone
	}
	if err != nil {
		return nil, nil, nil, err
	}
	return next, i.fresh(d.have), i.fresh(d.need), nil
}

// fresh filters out, in place, the ids already reported, and records the others.
func (i *Initiator) fresh(ids [][idSize]byte) [][idSize]byte {
	out := ids[:0]
	for _, id := range ids {
		if _, ok := i.reported[id]; !ok {
			i.reported[id] = struct{}{}
			out = append(out, id)
		}
	}
	return out
}

// Responder answers an initiator one message at a time. It keeps no state between messages beyond
// the set, so it is safe for concurrent use and one Responder may serve many initiators.
type Responder struct {
	p peer
}

// NewResponder returns a responder over s; frameSizeLimit is as for [NewInitiator].
func NewResponder(s *Set, frameSizeLimit int) *Responder {
	return &Responder{p: peer{set: s, limit: normLimit(frameSizeLimit), maxRanges: MaxRanges}}
}

// Respond returns the reply to one message from an initiator. A reply of only the version byte
// means every range matched.
//
// A message that starts with another protocol version byte yields an error wrapping
// [ErrUnsupportedVersion] and no reply. The spec lets a responder answer such a message with the
// single byte of the highest version it supports, so that the initiator can downgrade; dt speaks
// only version 1 on both ends, so a caller that wants to keep the link open can send
// []byte{ProtocolVersion} itself, and otherwise closes it.
func (r *Responder) Respond(msg []byte) ([]byte, error) {
	return r.p.process(msg, nil)
}

func normLimit(l int) int {
	if l == 0 {
		return 0
	}
	return max(l, MinFrameSizeLimit)
}

// peer is what both roles share: the set, the frame size limit and which role this is.
type peer struct {
	set       *Set
	limit     int
	initiator bool
	maxRanges int // MaxRanges; lowered by tests
}

// diff collects the ids an initiator settles in one message.
type diff struct {
	have, need [][32]byte
}

// wireRange is one decoded range of an incoming message.
type wireRange struct {
	upper bound
	mode  uint64
	fp    []byte // Fingerprint payload
	ids   []byte // IdList payload, 32 bytes per id
}

// process parses one incoming message and builds the reply (spec "Message" and "Range"). The
// ranges are walked in order, each matched to the items between the previous upper bound and its
// own; consecutive ranges that need nothing more are merged into one Skip, written only when a
// later range needs something. For an initiator, d receives the settled ids, and a reply with no
// ranges left is returned as nil.
func (p *peer) process(msg []byte, d *diff) ([]byte, error) {
	if len(msg) == 0 {
		return nil, fmt.Errorf("%w: empty message", ErrMalformed)
	}
	if msg[0] != ProtocolVersion {
		return nil, fmt.Errorf("%w: got 0x%02x, want 0x%02x", ErrUnsupportedVersion, msg[0], ProtocolVersion)
	}
	in := decoder{buf: msg[1:]}
	out := newEncoder()
	n := p.set.Len()
	var prev bound // lower bound of the next range: the upper bound of the previous one
	lower := 0     // index of the first item at or above prev
	skip := false  // a Skip up to prev is pending
ranges:
	for i := 0; !in.empty(); i++ {
		if i >= p.maxRanges {
			return nil, fmt.Errorf("%w: %w", ErrMalformed, errTooMany)
		}
		if prev.isInfinity() {
			return nil, fmt.Errorf("%w: range %d: %w", ErrMalformed, i, errAfterInfinity)
		}
		r, err := readRange(&in, prev)
		if err != nil {
			return nil, fmt.Errorf("%w: range %d: %w", ErrMalformed, i, err)
		}
		upper := p.set.lowerBound(lower, n, r.upper)
		m, skipBefore := out.mark(), skip
		switch r.mode {
		case modeSkip:
			skip = true
		case modeFingerprint:
			if p.set.fingerprint(lower, upper) == [fingerprintSize]byte(r.fp) {
				skip = true
				break
			}
			out.flushSkip(&skip, prev)
			p.split(&out, lower, upper, r.upper)
		case modeIDList:
			if p.initiator {
				d.settle(p.set.items[lower:upper], r.ids)
				skip = true
				break
			}
			out.flushSkip(&skip, prev)
			if end, eb := p.replyIDs(&out, lower, upper, r.upper); end < upper {
				if end == lower { // not even one id fits
					out.reset(m)
					p.cut(&out, skipBefore, prev, lower)
				} else {
					p.cut(&out, false, eb, end)
				}
				break ranges
			}
		}
		if p.over(&out) {
			out.reset(m)
			p.cut(&out, skipBefore, prev, lower)
			break
		}
		prev, lower = r.upper, upper
	}
	if p.initiator && len(out.buf) == 1 {
		return nil, nil
	}
	return out.buf, nil
}

// readRange decodes one range and checks that its bound does not go below the previous one.
func readRange(in *decoder, prev bound) (wireRange, error) {
	var r wireRange
	var err error
	if r.upper, err = in.bound(); err != nil {
		return r, fmt.Errorf("bound: %w", err)
	}
	if compareBounds(r.upper, prev) < 0 {
		return r, errOrder
	}
	if r.mode, err = in.varint(); err != nil {
		return r, fmt.Errorf("mode: %w", err)
	}
	switch r.mode {
	case modeSkip:
	case modeFingerprint:
		if r.fp, err = in.bytes(fingerprintSize); err != nil {
			return r, fmt.Errorf("fingerprint: %w", err)
		}
	case modeIDList:
		if r.ids, err = in.idList(); err != nil {
			return r, fmt.Errorf("id list: %w", err)
		}
	default:
		return r, fmt.Errorf("%w %d", errMode, r.mode)
	}
	return r, nil
}

// budget is how long a message may grow while ranges are added, leaving room to cut it short.
func (p *peer) budget() int {
	if p.limit == 0 {
		return math.MaxInt
	}
	return p.limit - cutReserve
}

// over reports whether the message has outgrown its budget of bytes or ranges. Three ranges are
// kept in hand: a pending Skip, a partial id list and the closing range.
func (p *peer) over(out *encoder) bool {
	return len(out.buf) > p.budget() || out.ranges > p.maxRanges-3
}

// cut ends a message that is full: after an optional Skip up to prev, one Fingerprint range
// covers everything from prev to infinity, with the fingerprint of items[from:] (the items at or
// above prev). The peer compares it with its own and keeps reconciling whatever differs there in
// the next round. Writing the pending Skip keeps the ranges before prev closed; without it the
// closing range would re-open ranges already found equal or settled, and they would be
// reconciled again.
func (p *peer) cut(out *encoder, skip bool, prev bound, from int) {
	if skip {
		out.rangeHeader(prev, modeSkip)
	}
	out.rangeHeader(infinity, modeFingerprint)
	fp := p.set.fingerprint(from, p.set.Len())
	out.buf = append(out.buf, fp[:]...)
}

// split writes items[lower:upper], the items below ub, as an id list if there are fewer than
// 2*buckets of them, else as buckets ranges of near-equal size, each with its fingerprint and the
// shortest bound separating it from the next.
func (p *peer) split(out *encoder, lower, upper int, ub bound) {
	items := p.set.items
	count := upper - lower
	if count < 2*buckets {
		writeIDList(out, ub, items[lower:upper])
		return
	}
	per, extra := count/buckets, count%buckets
	cur := lower
	for b := range buckets {
		size := per
		if b < extra {
			size++
		}
		fp := p.set.fingerprint(cur, cur+size)
		cur += size
		nb := ub
		if cur < upper {
			nb = minimalBound(items[cur-1], items[cur])
		}
		out.rangeHeader(nb, modeFingerprint)
		out.buf = append(out.buf, fp[:]...)
	}
}

// replyIDs answers an initiator's id list with the responder's own ids in items[lower:upper]. If
// they do not all fit in the frame, it writes as many as fit, with the shortest bound after the
// last one written, and returns the index of the first id left out and that bound; the caller
// then cuts the message. It writes nothing if not even one id fits.
func (p *peer) replyIDs(out *encoder, lower, upper int, ub bound) (int, bound) {
	items := p.set.items
	room := p.budget() - len(out.buf) - (maxBoundLen + 1 + maxVarintLen)
	fit := max(room, 0) / idSize
	if fit >= upper-lower {
		writeIDList(out, ub, items[lower:upper])
		return upper, ub
	}
	if fit == 0 {
		return lower, bound{}
	}
	end := lower + fit
	eb := minimalBound(items[end-1], items[end])
	writeIDList(out, eb, items[lower:end])
	return end, eb
}

// writeIDList writes one IdList range ending at ub.
func writeIDList(out *encoder, ub bound, items []Item) {
	out.rangeHeader(ub, modeIDList)
	out.buf = appendVarint(out.buf, uint64(len(items)))
	for _, it := range items {
		out.buf = append(out.buf, it.ID[:]...)
	}
}

// flushSkip writes the pending Skip range, if any, ending at prev.
func (e *encoder) flushSkip(skip *bool, prev bound) {
	if *skip {
		e.rangeHeader(prev, modeSkip)
		*skip = false
	}
}

// settle compares the initiator's items in a range with the responder's ids there: items the
// responder lacks go to have, ids the initiator lacks to need, each once and in message order.
func (d *diff) settle(items []Item, ids []byte) {
	theirs := make(map[[idSize]byte]struct{}, len(ids)/idSize)
	for off := 0; off < len(ids); off += idSize {
		theirs[[idSize]byte(ids[off:off+idSize])] = struct{}{}
	}
	for _, it := range items {
		if _, ok := theirs[it.ID]; ok {
			delete(theirs, it.ID)
		} else {
			d.have = append(d.have, it.ID)
		}
	}
	for off := 0; off < len(ids); off += idSize {
		id := [idSize]byte(ids[off : off+idSize])
		if _, ok := theirs[id]; ok {
			d.need = append(d.need, id)
			delete(theirs, id)
		}
	}
}
