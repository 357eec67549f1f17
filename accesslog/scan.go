package accesslog

import "math/bits"

// Word-at-a-time tests of 8 bytes (Mycroft's and Anderson's bit tricks): each is non-zero
// exactly when some byte of x has the property, which is all the scan below asks.
const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// hasZeroByte reports a zero byte in x.
func hasZeroByte(x uint64) uint64 { return (x - ones) & ^x & highs }

// needsEscape reports a byte of x outside printable ASCII (below 0x20, or 0x7f and above), or
// '"', or '\\': the bytes jsonPlain lacks.
func needsEscape(x uint64) uint64 {
	below := (x - ones*0x20) & ^x & highs   // a byte < 0x20
	above := ((x + ones) | x) & highs       // a byte > 0x7e; no carry crosses bytes unless one is
	quote := hasZeroByte(x ^ (ones * '"'))  // a '"'
	slash := hasZeroByte(x ^ (ones * '\\')) // a '\\'
	return below | above | quote | slash
}

// plainPrefix returns the length of s's leading run of bytes that jsonPlain holds, reading 8
// bytes at a time: nearly every byte of a request's fields is one. The lowest byte needsEscape
// marks is exact (a borrow or carry into a byte comes only from a marked byte below it), so the
// run ends there. A tail shorter than 8 bytes is read as the string's last 8 (their start
// already known plain) or, in a string shorter than 8, padded with plain bytes.
func plainPrefix[S []byte | string](s S) int {
	i := 0
	for ; i+8 <= len(s); i += 8 {
		if m := needsEscape(load8(s[i:])); m != 0 {
			return i + bits.TrailingZeros64(m)/8
		}
	}
	if i == len(s) {
		return i
	}
	var m uint64
	if len(s) >= 8 {
		back := i - (len(s) - 8)                                        // bytes of the last 8 already scanned
		m = needsEscape(load8(s[len(s)-8:])) &^ (1<<(8*uint(back)) - 1) // ignore them
		i = len(s) - 8
	} else {
		pad := [8]byte{'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a'}
		copy(pad[:], s)
		m = needsEscape(load8(pad[:]))
	}
	if m == 0 {
		return len(s)
	}
	return i + bits.TrailingZeros64(m)/8
}

// load8 reads s's first 8 bytes as a little-endian word.
func load8[S []byte | string](s S) uint64 {
	w := s[:8]
	return uint64(w[0]) | uint64(w[1])<<8 | uint64(w[2])<<16 | uint64(w[3])<<24 |
		uint64(w[4])<<32 | uint64(w[5])<<40 | uint64(w[6])<<48 | uint64(w[7])<<56
}
