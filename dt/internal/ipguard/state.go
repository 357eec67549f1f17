package ipguard

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"net/netip"
	"slices"
	"time"
)

// The stored state, version 1, is
//
//	magic "DTIG" | version 0x01 | uvarint n | n entries | CRC-32C of all preceding bytes (4 bytes BE)
//
// and each entry is
//
//	family (4 or 6) | address (4 or 16 bytes) | prefix bits (1 byte) |
//	until (int64 BE, Unix nanoseconds) | uvarint count | uvarint reason length | reason
//
// Entries are sorted by prefix, so equal states encode to equal bytes. The CRC catches a
// truncated or damaged record that would otherwise decode as plausible blocks (bbolt does not
// checksum values). Entries whose block has ended but whose count is still remembered are kept:
// they are what makes the next block of a returning attacker longer.
//
// ONLY CHANGE THIS FORMAT BY ADDING A VERSION. The bytes are read back by later releases.
const (
	stateMagic    = "DTIG"
	stateVersion1 = 1

	familyIPv4 = 4
	familyIPv6 = 6

	// maxStateEntries bounds a decoded state: far above any real block list, low enough that a
	// corrupt count cannot make the decoder allocate without bound.
	maxStateEntries = 1 << 20
	// maxBlockCount bounds an entry's block count; escalation stops at the last duration long
	// before it.
	maxBlockCount = 1 << 20
	// maxReasonLen bounds an entry's reason; the reasons in use are short identifiers.
	maxReasonLen = 32
	// minEntryLen is the shortest possible entry (IPv4, one-byte count, empty reason).
	minEntryLen = 1 + 4 + 1 + 8 + 1 + 1
	crcLen      = 4
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// encodeState returns the stored form of blocks.
func encodeState(blocks []Block) []byte {
	blocks = slices.Clone(blocks)
	sortBlocks(blocks)
	b := make([]byte, 0, len(stateMagic)+1+binary.MaxVarintLen64+len(blocks)*40+crcLen)
	b = append(b, stateMagic...)
	b = append(b, stateVersion1)
	b = binary.AppendUvarint(b, uint64(len(blocks)))
	for _, e := range blocks {
		a := e.Prefix.Addr()
		if a.Is4() {
			b = append(b, familyIPv4)
		} else {
			b = append(b, familyIPv6)
		}
		b = append(b, a.AsSlice()...)
		b = append(b, byte(e.Prefix.Bits()))
		b = binary.BigEndian.AppendUint64(b, uint64(e.Until.UnixNano()))
		b = binary.AppendUvarint(b, uint64(e.Count))
		b = binary.AppendUvarint(b, uint64(len(e.Reason)))
		b = append(b, e.Reason...)
	}
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// decodeState parses a stored state. Every error wraps ErrCorruptState. It accepts exactly what
// encodeState produces for valid blocks: prefixes that are keys or /48s, masked, in strictly
// ascending order, with minimal varints; so any accepted input re-encodes to the same bytes.
func decodeState(data []byte) ([]Block, error) {
	head := len(stateMagic) + 1
	if len(data) < head+crcLen {
		return nil, fmt.Errorf("%w: %d bytes is too short", ErrCorruptState, len(data))
	}
	if string(data[:len(stateMagic)]) != stateMagic {
		return nil, fmt.Errorf("%w: bad magic", ErrCorruptState)
	}
	if v := data[len(stateMagic)]; v != stateVersion1 {
		return nil, fmt.Errorf("%w: unknown version %d", ErrCorruptState, v)
	}
	body, sum := data[:len(data)-crcLen], binary.BigEndian.Uint32(data[len(data)-crcLen:])
	if crc32.Checksum(body, castagnoli) != sum {
		return nil, fmt.Errorf("%w: checksum mismatch", ErrCorruptState)
	}
	d := stateDecoder{b: body[head:]}
	n := d.uvarint()
	if d.err == nil && (n > maxStateEntries || n > uint64(len(d.b)/minEntryLen)) {
		return nil, fmt.Errorf("%w: %d entries cannot fit in %d bytes", ErrCorruptState, n, len(d.b))
	}
	blocks := make([]Block, 0, n)
	for i := uint64(0); i < n && d.err == nil; i++ {
		e := d.entry()
		if d.err != nil {
			return nil, fmt.Errorf("%w: entry %d: %w", ErrCorruptState, i, d.err)
		}
		// Strictly ascending order makes the encoding canonical and rules out duplicates.
		if len(blocks) > 0 && comparePrefixes(blocks[len(blocks)-1].Prefix, e.Prefix) >= 0 {
			return nil, fmt.Errorf("%w: entry %d: %v out of order", ErrCorruptState, i, e.Prefix)
		}
		blocks = append(blocks, e)
	}
	if d.err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCorruptState, d.err)
	}
	if len(d.b) != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the last entry", ErrCorruptState, len(d.b))
	}
	return blocks, nil
}

// stateDecoder reads fields from b, recording the first error; later reads return zero values.
type stateDecoder struct {
	b   []byte
	err error
}

func (d *stateDecoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf(format, args...)
	}
}

func (d *stateDecoder) bytes(n int) []byte {
	if d.err != nil {
		return nil
	}
	if len(d.b) < n {
		d.fail("truncated")
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func (d *stateDecoder) byte() byte {
	if v := d.bytes(1); v != nil {
		return v[0]
	}
	return 0
}

func (d *stateDecoder) uint64() uint64 {
	if v := d.bytes(8); v != nil {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

func (d *stateDecoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 || n != uvarintLen(v) {
		d.fail("bad varint") // malformed, or not minimal (encodings are canonical)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func uvarintLen(v uint64) int {
	var buf [binary.MaxVarintLen64]byte
	return len(binary.AppendUvarint(buf[:0], v))
}

// entry reads one block and checks that it could have been written by encodeState.
func (d *stateDecoder) entry() Block {
	var addr netip.Addr
	switch fam := d.byte(); fam {
	case familyIPv4:
		if b := d.bytes(4); b != nil {
			addr = netip.AddrFrom4([4]byte(b))
		}
	case familyIPv6:
		if b := d.bytes(16); b != nil {
			addr = netip.AddrFrom16([16]byte(b))
		}
	default:
		d.fail("unknown address family %d", fam)
	}
	bits := int(d.byte())
	until := int64(d.uint64())
	count := d.uvarint()
	reason := string(d.bytes(int(min(d.uvarint(), maxReasonLen+1))))
	if d.err != nil {
		return Block{}
	}
	p := netip.PrefixFrom(addr, bits)
	switch {
	case !validBlockPrefix(p):
		d.fail("%v is not a blockable prefix", p)
	case count == 0 || count > maxBlockCount:
		d.fail("block count %d out of range", count)
	case !validReason(reason):
		d.fail("invalid reason %q", reason)
	}
	return Block{Prefix: p, Until: time.Unix(0, until).UTC(), Reason: reason, Count: int(count)}
}

// validBlockPrefix reports whether p is something the guard blocks: an IPv4 /32, or an IPv6
// /64 or /48 that is not IPv4-mapped (mapped addresses are keyed as IPv4), with no host bits.
func validBlockPrefix(p netip.Prefix) bool {
	if !p.IsValid() || p != p.Masked() || p.Addr().Zone() != "" {
		return false
	}
	if p.Addr().Is4() {
		return p.Bits() == ipv4KeyBits
	}
	return !p.Addr().Is4In6() && (p.Bits() == ipv6KeyBits || p.Bits() == ipv6SubnetBit)
}

// validReason reports whether r is a short identifier of lower-case letters, digits and '_', as
// every block reason is; anything else in a stored state is damage.
func validReason(r string) bool {
	if len(r) == 0 || len(r) > maxReasonLen {
		return false
	}
	for _, c := range []byte(r) {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' {
			return false
		}
	}
	return true
}
