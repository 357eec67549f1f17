package static

import "strings"

// coding is a content coding the edge can serve (RFC 9110 §8.4.1). The order is the preference
// among codings a client accepts equally: brotli and zstd compress text better than gzip.
type coding uint8

const (
	identity coding = iota
	codingBr
	codingZstd
	codingGzip
	numCodings
)

// String returns the coding's registered name, as sent in Content-Encoding; "" for identity.
func (c coding) String() string {
	switch c {
	case codingBr:
		return "br"
	case codingZstd:
		return "zstd"
	case codingGzip:
		return "gzip"
	}
	return ""
}

// parseCoding maps a content-coding name to a coding, case-insensitively (RFC 9110 §8.4.1).
// "x-gzip" is gzip (RFC 9110 §8.4.1.3).
func parseCoding(name string) (coding, bool) {
	switch {
	case strings.EqualFold(name, "br"):
		return codingBr, true
	case strings.EqualFold(name, "zstd"):
		return codingZstd, true
	case strings.EqualFold(name, "gzip"), strings.EqualFold(name, "x-gzip"):
		return codingGzip, true
	case strings.EqualFold(name, "identity"):
		return identity, true
	}
	return 0, false
}

// notListed is the weight of a coding the Accept-Encoding field does not name.
const notListed = -1

// acceptEncoding is what an Accept-Encoding field (RFC 9110 §12.5.3) says about the codings the
// edge can serve. Weights are qvalues in thousandths (RFC 9110 §12.4.2 allows three decimals).
type acceptEncoding struct {
	present bool              // the request has the field (even empty)
	q       [numCodings]int16 // per coding; notListed if not named
	star    int16             // the "*" entry; notListed if absent
}

// parseAcceptEncoding reads every Accept-Encoding field line of a request. It does not allocate.
// Unknown codings are skipped, as are elements with an unparsable weight (a broken element must
// not make a refused coding acceptable, nor the reverse). When a coding is named twice, the
// first element counts.
func parseAcceptEncoding(lines []string) acceptEncoding {
	ae := acceptEncoding{present: len(lines) > 0, star: notListed}
	for i := range ae.q {
		ae.q[i] = notListed
	}
	for _, line := range lines {
		for line != "" {
			var elem string
			elem, line, _ = strings.Cut(line, ",")
			name, params, _ := strings.Cut(elem, ";")
			name = trimOWS(name)
			if name == "" {
				continue // empty list elements are allowed (RFC 9110 §5.6.1)
			}
			q, ok := weight(params)
			if !ok {
				continue
			}
			if name == "*" {
				if ae.star == notListed {
					ae.star = q
				}
				continue
			}
			if c, known := parseCoding(name); known && ae.q[c] == notListed {
				ae.q[c] = q
			}
		}
	}
	return ae
}

// weight parses the parameters after a coding: `OWS ";" OWS "q=" qvalue` (RFC 9110 §12.4.2).
// No parameters means q=1. Parameters other than q are ignored.
func weight(params string) (int16, bool) {
	q := int16(1000)
	for params != "" {
		var p string
		p, params, _ = strings.Cut(params, ";")
		p = trimOWS(p)
		if len(p) < 2 || p[0]|0x20 != 'q' || p[1] != '=' {
			continue
		}
		v, ok := parseQValue(p[2:])
		if !ok {
			return 0, false
		}
		q = v
	}
	return q, true
}

// parseQValue parses `"0" [ "." 0*3DIGIT ] / "1" [ "." 0*3("0") ]` into thousandths.
func parseQValue(s string) (int16, bool) {
	if s == "" || s[0] != '0' && s[0] != '1' {
		return 0, false
	}
	v := int16(s[0]-'0') * 1000
	if len(s) == 1 {
		return v, true
	}
	if s[1] != '.' || len(s) > 5 {
		return 0, false
	}
	scale := int16(100)
	for i := 2; i < len(s); i++ {
		d := s[i]
		if d < '0' || d > '9' || v == 1000 && d != '0' {
			return 0, false
		}
		v += int16(d-'0') * scale
		scale /= 10
	}
	return v, true
}

func trimOWS(s string) string {
	for s != "" && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for s != "" && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// weightOf returns the client's weight for a content coding other than identity: its own
// entry, else the "*" entry, else 0 (not acceptable).
func (ae *acceptEncoding) weightOf(c coding) int16 {
	if q := ae.q[c]; q != notListed {
		return q
	}
	if ae.star != notListed {
		return ae.star
	}
	return 0
}

// identityWeight returns the weight of the unencoded representation. Identity is acceptable
// unless "identity;q=0", or "*;q=0" with no identity entry, refuses it (RFC 9110 §12.5.3). When
// the client gives it no weight it ranks below every coding it accepts (weight 1 of 1000): a
// client that lists gzip wants gzip.
func (ae *acceptEncoding) identityWeight() int16 {
	if q := ae.q[identity]; q != notListed {
		return q
	}
	if ae.star == 0 {
		return 0
	}
	return 1
}

// choose picks the representation to send among those available (non-nil), per RFC 9110
// §12.5.3: the highest weight wins; among equal weights a coding beats identity and br beats
// zstd beats gzip (codings are numbered in that order). A request without the field gets
// identity: the client stated no preference, and it may not decode anything. ok is false when
// the client accepts nothing available (406).
func (ae *acceptEncoding) choose(reps *[numCodings]*rep) (r *rep, ok bool) {
	if !ae.present {
		return reps[identity], true
	}
	best, bestQ := reps[identity], ae.identityWeight()
	for c := codingBr; c < numCodings; c++ {
		if reps[c] == nil {
			continue
		}
		if q := ae.weightOf(c); q > 0 && q >= bestQ && (q > bestQ || best.coding == identity) {
			best, bestQ = reps[c], q
		}
	}
	if bestQ == 0 {
		return nil, false
	}
	return best, true
}
