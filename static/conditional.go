package static

import (
	"net/http"
	"strings"
)

// condResult is the outcome of one precondition: the field is absent (or to be ignored), or it
// evaluates to true or false (RFC 9110 §13.1).
type condResult uint8

const (
	condNone condResult = iota
	condTrue
	condFalse
)

// Canonical names of the request fields read here; the request header map is indexed directly
// so that no key is canonicalised per request.
const (
	hIfMatch           = "If-Match"
	hIfNoneMatch       = "If-None-Match"
	hIfModifiedSince   = "If-Modified-Since"
	hIfUnmodifiedSince = "If-Unmodified-Since"
	hIfRange           = "If-Range"
	hRange             = "Range"
	hAcceptEncoding    = "Accept-Encoding"
)

// validators are what the preconditions compare against: the selected representation's strong
// ETag and the deploy time.
type validators struct {
	etag    string // strong, quoted
	modTime int64  // Unix seconds
	hasMod  bool
}

// checkPreconditions evaluates the conditional fields of a GET or HEAD in the order of RFC 9110
// §13.2.2 and returns 0 to go on, http.StatusNotModified, or http.StatusPreconditionFailed. It is
// called only for responses that would otherwise be 200: a server must ignore preconditions
// when the response would be anything else (RFC 9110 §13.2.1), such as a 404 page.
func checkPreconditions(h http.Header, v validators) int {
	if !mayHaveConditionals(h) {
		return 0
	}
	return evalPreconditions(h, v)
}

// evalPreconditions is checkPreconditions without its shortcut for a request without any.
func evalPreconditions(h http.Header, v validators) int {
	// Step 1-2: If-Match, else If-Unmodified-Since.
	ifMatch := checkIfMatch(h, v)
	if ifMatch == condNone {
		ifMatch = checkIfUnmodifiedSince(h, v)
	}
	if ifMatch == condFalse {
		return http.StatusPreconditionFailed
	}
	// Step 3-4: If-None-Match, else If-Modified-Since. For GET and HEAD a false If-None-Match
	// is a 304, not a 412 (RFC 9110 §13.1.2).
	switch checkIfNoneMatch(h, v) {
	case condFalse:
		return http.StatusNotModified
	case condNone:
		if checkIfModifiedSince(h, v) == condFalse {
			return http.StatusNotModified
		}
	}
	return 0
}

// mayHaveConditionals reports false when h holds none of the conditional fields, for a small
// header, where going over its few names costs less than looking up the four fields (nearly
// every request has none of them); true otherwise, and for a larger header.
func mayHaveConditionals(h http.Header) bool {
	if len(h) > maxScannedFields {
		return true
	}
	for k := range h {
		if strings.HasPrefix(k, "If-") {
			return true
		}
	}
	return false
}

// maxScannedFields is the largest request header mayHaveConditionals goes over.
const maxScannedFields = 4

// checkIfMatch: true if the field is "*" or lists the current ETag, by strong comparison
// (RFC 9110 §13.1.1). A weak tag never matches strongly. "*" matches: this is only called for a
// current representation.
func checkIfMatch(h http.Header, v validators) condResult {
	return tagListMatches(h[hIfMatch], v.etag, true, condTrue, condFalse)
}

// checkIfNoneMatch: false if the field is "*" or lists the current ETag, by weak comparison
// (RFC 9110 §13.1.2): W/"x" matches "x", as a cache revalidating a weakened copy expects.
func checkIfNoneMatch(h http.Header, v validators) condResult {
	return tagListMatches(h[hIfNoneMatch], v.etag, false, condFalse, condTrue)
}

// tagListMatches evaluates an entity-tag list field: condNone when absent, match when it holds
// "*" or etag (a weak tag counts only when !strong), otherwise noMatch. An unparsable list
// matches nothing from the point it stops parsing.
func tagListMatches(lines []string, etag string, strong bool, match, noMatch condResult) condResult {
	if len(lines) == 0 {
		return condNone
	}
	for _, line := range lines {
		for s := line; ; {
			s = trimListSeparators(s)
			if s == "" {
				break
			}
			if s[0] == '*' {
				return match
			}
			tag, weak, rest, ok := scanETag(s)
			if !ok {
				break
			}
			if tag == etag && !(strong && weak) {
				return match
			}
			s = rest
		}
	}
	return noMatch
}

// checkIfUnmodifiedSince: false if the representation changed after the date (RFC 9110
// §13.1.4). An invalid date, or no known modification time, makes the field ignored.
func checkIfUnmodifiedSince(h http.Header, v validators) condResult {
	return unchangedSince(h[hIfUnmodifiedSince], v, condTrue, condFalse)
}

// checkIfModifiedSince: false if the representation has not changed since the date (RFC 9110
// §13.1.3). It is evaluated only when If-None-Match is absent; an invalid date is ignored.
func checkIfModifiedSince(h http.Header, v validators) condResult {
	return unchangedSince(h[hIfModifiedSince], v, condFalse, condTrue)
}

// unchangedSince evaluates a date field: condNone when absent, invalid or without a known
// modification time, unchanged when the representation was last modified at or before the
// date, otherwise changed.
func unchangedSince(lines []string, v validators, unchanged, changed condResult) condResult {
	if len(lines) == 0 || !v.hasMod {
		return condNone
	}
	t, err := http.ParseTime(lines[0])
	if err != nil {
		return condNone
	}
	if v.modTime <= t.Unix() {
		return unchanged
	}
	return changed
}

// checkIfRange: true if the Range field applies (RFC 9110 §13.1.5): the field's entity-tag
// equals the current one by strong comparison, or its date equals Last-Modified exactly. False
// means "send the whole representation". Our Last-Modified is a strong validator in the sense
// of RFC 9110 §8.8.2.2 only per deploy, which is what exact equality checks.
func checkIfRange(h http.Header, v validators) condResult {
	lines := h[hIfRange]
	if len(lines) == 0 {
		return condNone
	}
	s := trimOWS(lines[0])
	if strings.HasPrefix(s, `"`) || strings.HasPrefix(s, "W/") {
		tag, weak, rest, ok := scanETag(s)
		if ok && !weak && trimOWS(rest) == "" && tag == v.etag {
			return condTrue
		}
		return condFalse
	}
	if !v.hasMod {
		return condFalse
	}
	t, err := http.ParseTime(s)
	if err != nil || t.Unix() != v.modTime {
		return condFalse
	}
	return condTrue
}

// scanETag reads one entity-tag (RFC 9110 §8.8.3: [ "W/" ] DQUOTE *etagc DQUOTE) at the start
// of s and returns it without the weak prefix, whether it was weak, and the rest of s.
func scanETag(s string) (tag string, weak bool, rest string, ok bool) {
	if strings.HasPrefix(s, "W/") {
		weak, s = true, s[2:]
	}
	if len(s) < 2 || s[0] != '"' {
		return "", false, "", false
	}
	for i := 1; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"':
			return s[:i+1], weak, s[i+1:], true
		case c == 0x21 || c >= 0x23 && c <= 0x7e || c >= 0x80: // etagc
		default:
			return "", false, "", false
		}
	}
	return "", false, "", false
}

// trimListSeparators skips whitespace and commas between list elements (RFC 9110 §5.6.1).
func trimListSeparators(s string) string {
	for s != "" && (s[0] == ' ' || s[0] == '\t' || s[0] == ',') {
		s = s[1:]
	}
	return s
}
