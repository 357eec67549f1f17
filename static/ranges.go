package static

import (
	"math"
	"strings"
)

// Limits on what a Range field may ask for. Beyond them the field is ignored and the whole
// representation is sent, as RFC 9110 §14.2 allows for "a set of many small ranges" or
// overlapping ones: "indications of either a broken client or a deliberate denial-of-service
// attack".
const (
	// maxRanges bounds the parts of one multipart/byteranges response.
	maxRanges = 32
)

// byteRange is a satisfiable range of a representation: length bytes from start.
type byteRange struct {
	start, length int64
}

// rangeResult says what to do with a Range field.
type rangeResult uint8

const (
	rangeIgnore        rangeResult = iota // send 200 with the whole representation
	rangePartial                          // send 206 with the ranges
	rangeUnsatisfiable                    // send 416 (RFC 9110 §15.5.17)
)

// parseRange interprets a Range field value (RFC 9110 §14.1.2) for a representation of size
// bytes. A unit other than bytes, a syntax error anywhere (including first-pos > last-pos, as
// in "bytes=5-1"), too many ranges, or ranges whose lengths add up to more than the
// representation (heavy overlap) make the field ignored. If the field is valid but no range is
// satisfiable (every first-pos at or past the end, "bytes=-0"), the result is
// rangeUnsatisfiable. Otherwise it returns the satisfiable ranges in the order asked, clamped
// to the representation.
func parseRange(s string, size int64) ([]byteRange, rangeResult) {
	unit, set, ok := strings.Cut(s, "=")
	if !ok || !strings.EqualFold(unit, "bytes") {
		return nil, rangeIgnore // RFC 9110 §14.2: ignore a unit we do not understand
	}
	var ranges []byteRange
	var total int64
	specs := 0
	for set != "" {
		var spec string
		spec, set, _ = strings.Cut(set, ",")
		spec = trimOWS(spec)
		if spec == "" {
			continue // empty list elements are allowed (RFC 9110 §5.6.1)
		}
		if specs++; specs > maxRanges {
			return nil, rangeIgnore
		}
		r, valid, satisfiable := parseRangeSpec(spec, size)
		if !valid {
			return nil, rangeIgnore
		}
		if !satisfiable {
			continue
		}
		if total += r.length; total > size {
			return nil, rangeIgnore
		}
		ranges = append(ranges, r)
	}
	switch {
	case specs == 0:
		return nil, rangeIgnore
	case len(ranges) == 0:
		return nil, rangeUnsatisfiable
	}
	return ranges, rangePartial
}

// parseRangeSpec parses one int-range ("first-last", "first-") or suffix-range ("-n").
func parseRangeSpec(spec string, size int64) (r byteRange, valid, satisfiable bool) {
	first, last, ok := strings.Cut(spec, "-")
	if !ok {
		return byteRange{}, false, false
	}
	if first == "" { // suffix-range: the last n bytes
		n, ok := parseDigits(last)
		if !ok {
			return byteRange{}, false, false
		}
		if n == 0 || size == 0 {
			return byteRange{}, true, false
		}
		n = min(n, size)
		return byteRange{size - n, n}, true, true
	}
	start, ok := parseDigits(first)
	if !ok {
		return byteRange{}, false, false
	}
	end := int64(math.MaxInt64)
	if last != "" {
		if end, ok = parseDigits(last); !ok || end < start {
			return byteRange{}, false, false
		}
	}
	if start >= size {
		return byteRange{}, true, false
	}
	end = min(end, size-1)
	return byteRange{start, end - start + 1}, true, true
}

// parseDigits parses 1*DIGIT. Values past int64 are clamped to MaxInt64, which is right for a
// byte position: it is past the end of any representation.
func parseDigits(s string) (int64, bool) {
	if s == "" {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		if n > (math.MaxInt64-9)/10 {
			n = math.MaxInt64
			continue
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}
