package dt

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// errShort is returned by the decoder when input ends early.
var errShort = errors.New("unexpected end of data")

// decoder reads fixed-width and varint fields from untrusted bytes. The first failure sticks in err
// and every later read returns zero values, so callers check once at the end.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) bytes(n int) []byte {
	if d.err != nil {
		return nil
	}
	if n < 0 || n > len(d.b) {
		d.err = errShort
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) byte() byte {
	if b := d.bytes(1); b != nil {
		return b[0]
	}
	return 0
}

func (d *decoder) uint32() uint32 {
	if b := d.bytes(4); b != nil {
		return binary.BigEndian.Uint32(b)
	}
	return 0
}

func (d *decoder) uint64() uint64 {
	if b := d.bytes(8); b != nil {
		return binary.BigEndian.Uint64(b)
	}
	return 0
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errors.New("bad varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

// uvarintMax reads a varint that must not exceed limit (a length checked before anything is
// allocated for it).
func (d *decoder) uvarintMax(limit uint64) uint64 {
	v := d.uvarint()
	if d.err == nil && v > limit {
		d.err = fmt.Errorf("length %d over limit %d", v, limit)
		return 0
	}
	return v
}

// lenBytes reads a varint length (at most limit) followed by that many bytes.
func (d *decoder) lenBytes(limit uint64) []byte {
	n := d.uvarintMax(limit)
	return d.bytes(int(n))
}

func (d *decoder) finish(what string) error {
	if d.err == nil && len(d.b) != 0 {
		d.err = fmt.Errorf("%d trailing bytes", len(d.b))
	}
	if d.err != nil {
		return fmt.Errorf("%w: %s: %w", ErrMalformed, what, d.err)
	}
	return nil
}

func appendLenBytes(b, v []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}
