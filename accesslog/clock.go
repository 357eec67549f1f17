package accesslog

import (
	"sync/atomic"
	"time"
)

// clock caches the text of the current second in both formats, so that a line pays for the
// calendar (the date, the month's name) once a second rather than once a line. Safe for
// concurrent use; a nil clock formats every time anew.
type clock struct {
	latest atomic.Pointer[stamp]
}

// stamp is one second's text, in UTC.
type stamp struct {
	sec     int64  // Unix seconds
	rfc3339 []byte // "2006-01-02T15:04:05", RFC 3339 up to the seconds
	clf     []byte // "02/Jan/2006:15:04:05 +0000", the Combined Log Format's
}

// stamp returns the text of the second holding unixNano. Only the newest second is kept: a line
// of an earlier second (logged a little late, at a second's turn) formats its own.
func (c *clock) stamp(unixNano int64) *stamp {
	sec := floorDiv(unixNano, 1e9)
	if c == nil {
		return newStamp(sec)
	}
	cur := c.latest.Load()
	if cur != nil && cur.sec == sec {
		return cur
	}
	s := newStamp(sec)
	if cur == nil || sec > cur.sec {
		c.latest.CompareAndSwap(cur, s) // lost to another goroutine: it stored the same second, or a newer one
	}
	return s
}

func newStamp(sec int64) *stamp {
	t := time.Unix(sec, 0).UTC()
	return &stamp{sec: sec, rfc3339: t.AppendFormat(nil, "2006-01-02T15:04:05"), clf: t.AppendFormat(nil, "02/Jan/2006:15:04:05 -0700")}
}

// appendRFC3339Nano appends the time unixNano as time.RFC3339Nano formats it in UTC: the
// seconds' text, then the fraction without its trailing zeros (none when zero), then "Z".
func appendRFC3339Nano(dst []byte, unixNano int64, c *clock) []byte {
	st := c.stamp(unixNano)
	dst = append(dst, st.rfc3339...)
	if ns := unixNano - st.sec*1e9; ns != 0 {
		var frac [10]byte
		frac[0] = '.'
		putDigits(frac[1:], uint64(ns))
		n := 10
		for frac[n-1] == '0' {
			n--
		}
		dst = append(dst, frac[:n]...)
	}
	return append(dst, 'Z')
}

// twoDigits holds "00" to "99", so that digits are written two at a time.
const twoDigits = "00010203040506070809101112131415161718192021222324252627282930313233343536373839" +
	"40414243444546474849505152535455565758596061626364656667686970717273747576777879" +
	"8081828384858687888990919293949596979899"

// putDigits writes v's last len(dst) decimal digits into dst, zero-padded on the left.
func putDigits(dst []byte, v uint64) {
	i := len(dst)
	for ; i >= 2; i -= 2 {
		d := v % 100 * 2
		dst[i-2], dst[i-1] = twoDigits[d], twoDigits[d+1]
		v /= 100
	}
	if i == 1 {
		dst[0] = byte('0' + v%10)
	}
}

// floorDiv is a/b rounded down, as time.Unix(0, a) splits nanoseconds into seconds.
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b < 0 {
		q--
	}
	return q
}
