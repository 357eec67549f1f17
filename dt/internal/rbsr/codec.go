package rbsr

import (
	"errors"
	"fmt"
	"math"
)

// Wire constants of Negentropy protocol v1 (docs/negentropy-protocol-v1.md). The numeric values
// are part of the protocol itself.
const (
	// ProtocolVersion is the first byte of every version 1 message.
	ProtocolVersion = 0x61

	modeSkip        = 0
	modeFingerprint = 1
	modeIDList      = 2

	idSize          = 32
	fingerprintSize = 16

	// maxVarintLen is the longest minimal varint of a uint64: ceil(64/7) digits.
	maxVarintLen = 10
	// maxBoundLen is the longest encoded bound: timestamp varint, prefix length (one byte, at
	// most 32) and a full id.
	maxBoundLen = maxVarintLen + 1 + idSize
)

// infinityTS is the timestamp reserved for the end of the (timestamp, id) space. The spec forbids
// it on items.
const infinityTS = math.MaxUint64

// Decoding faults, wrapped in ErrMalformed by the message parser.
var (
	errTruncated   = errors.New("message ends early")
	errVarintLong  = errors.New("varint overflows 64 bits")
	errVarintZero  = errors.New("varint has a leading zero digit")
	errPrefixLong  = errors.New("id prefix longer than 32 bytes")
	errTSOverflow  = errors.New("timestamp offset reaches infinity")
	errInfPrefix   = errors.New("infinity bound with an id prefix")
	errCountTooBig = errors.New("id count larger than the bytes left")
)

// appendVarint appends n as base-128 digits, most significant first, high bit set on all but the
// last ("Varint" in the spec).
func appendVarint(b []byte, n uint64) []byte {
	var tmp [maxVarintLen]byte
	i := len(tmp) - 1
	tmp[i] = byte(n & 0x7f)
	for n >>= 7; n != 0; n >>= 7 {
		i--
		tmp[i] = byte(n&0x7f) | 0x80
	}
	return append(b, tmp[i:]...)
}

// readVarint decodes one varint from the front of b and returns it with the number of bytes
// read. It rejects values above 2^64-1 and non-minimal encodings (a leading 0x80 digit), which the
// spec's "with as few digits as possible" rules out.
func readVarint(b []byte) (uint64, int, error) {
	var n uint64
	for i, c := range b {
		if i == 0 && c == 0x80 {
			return 0, 0, errVarintZero
		}
		if n > math.MaxUint64>>7 {
			return 0, 0, errVarintLong
		}
		n = n<<7 | uint64(c&0x7f)
		if c&0x80 == 0 {
			return n, i + 1, nil
		}
	}
	return 0, 0, errTruncated
}

// bound is an exclusive upper bound of a range: a timestamp and an id prefix, the omitted bytes
// being zero ("Bound" in the spec). Only prefixLen bytes of id go on the wire.
type bound struct {
	ts        uint64
	id        [idSize]byte
	prefixLen int
}

// infinity is the bound past every item; a message's ranges implicitly end there.
var infinity = bound{ts: infinityTS}

func (b bound) isInfinity() bool { return b.ts == infinityTS }

// itemBound is the bound just at it, with the full id.
func itemBound(it Item) bound { return bound{ts: it.Timestamp, id: it.ID, prefixLen: idSize} }

// minimalBound is the shortest bound b with prev < b <= next, for adjacent distinct items: the
// next timestamp alone when timestamps differ, else the shared id prefix plus one byte.
func minimalBound(prev, next Item) bound {
	if prev.Timestamp != next.Timestamp {
		return bound{ts: next.Timestamp}
	}
	b := bound{ts: next.Timestamp}
	n := 0
	for n < idSize && prev.ID[n] == next.ID[n] {
		n++
	}
	b.prefixLen = min(n+1, idSize)
	copy(b.id[:b.prefixLen], next.ID[:b.prefixLen])
	return b
}

// compareBounds orders bounds as the items they stand for (padded ids).
func compareBounds(a, b bound) int {
	if a.ts != b.ts {
		if a.ts < b.ts {
			return -1
		}
		return 1
	}
	return compareIDs(&a.id, &b.id)
}

// encoder builds one outgoing message. Timestamps are delta-encoded from the previous bound of the
// same message, so the encoder keeps the last one.
type encoder struct {
	buf    []byte
	lastTS uint64
	ranges int
}

// mark is a point an encoder can be rolled back to.
type mark struct {
	n, ranges int
	lastTS    uint64
}

func newEncoder() encoder { return encoder{buf: []byte{ProtocolVersion}} }

func (e *encoder) mark() mark { return mark{n: len(e.buf), ranges: e.ranges, lastTS: e.lastTS} }

func (e *encoder) reset(m mark) {
	e.buf, e.ranges, e.lastTS = e.buf[:m.n], m.ranges, m.lastTS
}

// bound appends b: infinity as timestamp 0, any other timestamp as 1 + the offset from the
// previous one. Callers emit bounds in ascending order, so the offset is never negative.
func (e *encoder) bound(b bound) {
	if b.isInfinity() {
		e.buf = append(e.buf, 0)
		e.lastTS = infinityTS
	} else {
		e.buf = appendVarint(e.buf, b.ts-e.lastTS+1)
		e.lastTS = b.ts
	}
	e.buf = appendVarint(e.buf, uint64(b.prefixLen))
	e.buf = append(e.buf, b.id[:b.prefixLen]...)
}

// rangeHeader appends the upper bound and mode of a new range.
func (e *encoder) rangeHeader(upper bound, mode uint64) {
	e.bound(upper)
	e.buf = appendVarint(e.buf, mode)
	e.ranges++
}

// decoder reads one incoming message after its version byte.
type decoder struct {
	buf    []byte
	lastTS uint64
}

func (d *decoder) empty() bool { return len(d.buf) == 0 }

func (d *decoder) varint() (uint64, error) {
	v, n, err := readVarint(d.buf)
	if err != nil {
		return 0, err
	}
	d.buf = d.buf[n:]
	return v, nil
}

// bytes returns the next n bytes, aliasing the message.
func (d *decoder) bytes(n int) ([]byte, error) {
	if n < 0 || n > len(d.buf) {
		return nil, errTruncated
	}
	b := d.buf[:n:n]
	d.buf = d.buf[n:]
	return b, nil
}

// bound decodes a bound. Unlike the reference implementation, which saturates, a timestamp offset
// that reaches 2^64-1 is an error (infinity is only ever encoded as 0), and the infinity bound may
// not carry an id prefix (it would sort after infinity and break the ordering of what is sent
// back). Every bound that decodes therefore encodes back to the same bytes.
func (d *decoder) bound() (bound, error) {
	var b bound
	enc, err := d.varint()
	if err != nil {
		return b, fmt.Errorf("timestamp: %w", err)
	}
	switch {
	case enc == 0:
		b.ts = infinityTS
	case enc-1 >= infinityTS-d.lastTS: // infinity has exactly one encoding, 0
		return b, errTSOverflow
	default:
		b.ts = d.lastTS + (enc - 1)
	}
	d.lastTS = b.ts
	l, err := d.varint()
	if err != nil {
		return b, fmt.Errorf("prefix length: %w", err)
	}
	if l > idSize {
		return b, errPrefixLong
	}
	if l > 0 && b.isInfinity() {
		return b, errInfPrefix
	}
	p, err := d.bytes(int(l))
	if err != nil {
		return b, fmt.Errorf("id prefix: %w", err)
	}
	b.prefixLen = copy(b.id[:], p)
	return b, nil
}

// idList reads an IdList payload and returns the ids as one slice of the message, 32 bytes each.
// The count is checked against the bytes present before anything is sliced.
func (d *decoder) idList() ([]byte, error) {
	n, err := d.varint()
	if err != nil {
		return nil, fmt.Errorf("id count: %w", err)
	}
	if n > uint64(len(d.buf)/idSize) {
		return nil, errCountTooBig
	}
	return d.bytes(int(n) * idSize)
}
