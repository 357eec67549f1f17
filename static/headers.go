package static

import (
	"fmt"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"

	"github.com/dt-cdn/dt/site"
)

// Canonical names of the response fields the handler sets. Header maps are written by index
// with these, so no key is canonicalised per response.
const (
	hAcceptRanges     = "Accept-Ranges"
	hAllow            = "Allow"
	hCacheControl     = "Cache-Control"
	hContentEncoding  = "Content-Encoding"
	hContentLength    = "Content-Length"
	hContentRange     = "Content-Range"
	hContentType      = "Content-Type"
	hETag             = "Etag" // http.CanonicalHeaderKey("ETag")
	hLastModified     = "Last-Modified"
	hLocation         = "Location"
	hNosniff          = "X-Content-Type-Options"
	hVary             = "Vary"
	hContentLanguage  = "Content-Language"
	hContentDisposit  = "Content-Disposition"
	ccRevalidate      = "public, max-age=0, must-revalidate"
	ccImmutable       = "public, max-age=31536000, immutable"
	fingerprintMinLen = 8
)

// field is one response header field, its values ready to put in a header map. The slices are
// shared by every response that sends them, and always have len == cap, so that an append by
// anyone (Header.Add) copies instead of writing into them.
type field struct {
	key    string
	values []string
}

// headerSet is the headers of a file's responses that do not depend on the request: the
// defaults plus what the _headers rules for the path say.
type headerSet struct {
	full        []field // 200, 206, and a file served as an error page (404.html)
	notModified []field // 304: no representation metadata (RFC 9110 §15.4.5)
	contentType string  // for the parts of a multipart/byteranges response
	vary        bool
}

// defaultsKey identifies the default headers of a file; files that share it share one headerSet.
type defaultsKey struct {
	contentType  string
	cacheControl string
	vary         bool
}

// headerRule is a _headers block with its fields checked and their names canonical.
type headerRule struct {
	pattern string
	fields  []field // one value each, in file order
}

// protectedHeader lists the fields a _headers rule cannot set: framing and hop-by-hop fields,
// and the validators and negotiation results the edge computes. A site that set them would
// break conditional requests, ranges or the connection, not customise its responses.
func protectedHeader(key string) bool {
	switch key {
	case "Accept-Ranges", "Connection", "Content-Encoding", "Content-Length", "Content-Range",
		"Date", "Etag", "Keep-Alive", "Last-Modified", "Location", "Proxy-Connection", "Te",
		"Trailer", "Transfer-Encoding", "Upgrade", "Vary", "X-Content-Type-Options", "Allow":
		return true
	}
	return false
}

// compileHeaderRules checks the _headers rules of a manifest: a name that is not an HTTP token,
// or a value with a control character, could not be sent, so the manifest is invalid.
func compileHeaderRules(rules []site.HeaderRule) ([]headerRule, error) {
	out := make([]headerRule, 0, len(rules))
	for _, r := range rules {
		hr := headerRule{pattern: r.Path}
		for _, kv := range r.Values {
			if !validFieldName(kv[0]) || !validFieldValue(kv[1]) {
				return nil, fmt.Errorf("%w: _headers rule %q: invalid field %q", ErrInvalidManifest, r.Path, kv[0])
			}
			key := http.CanonicalHeaderKey(kv[0])
			if protectedHeader(key) {
				continue
			}
			hr.fields = append(hr.fields, field{key, []string{strings.TrimSpace(kv[1])}})
		}
		out = append(out, hr)
	}
	return out, nil
}

// newHeaderSet builds the headers for defaults d and the matching _headers rules, in order.
// A rule's field replaces the default or an earlier rule's value of the same name (so a rule
// can override Cache-Control or Content-Type); a name repeated within one rule adds values.
func newHeaderSet(d defaultsKey, rules []headerRule, matched []int) *headerSet {
	fields := []field{
		{hContentType, []string{d.contentType}},
		{hCacheControl, []string{d.cacheControl}},
	}
	for _, i := range matched {
		setByRule := map[string]bool{}
		for _, f := range rules[i].fields {
			j := indexField(fields, f.key)
			switch {
			case j < 0:
				fields = append(fields, field{f.key, f.values})
			case setByRule[f.key]:
				fields[j].values = append(fields[j].values[:len(fields[j].values):len(fields[j].values)], f.values...)
			default:
				fields[j].values = f.values
			}
			setByRule[f.key] = true
		}
	}
	if d.vary {
		fields = append(fields, field{hVary, []string{hAcceptEncoding}})
	}
	hs := &headerSet{vary: d.vary}
	for _, f := range fields {
		f.values = f.values[:len(f.values):len(f.values)]
		hs.full = append(hs.full, f)
		switch f.key {
		case hContentType:
			hs.contentType = f.values[0]
		case hContentLanguage, hContentDisposit:
		default:
			hs.notModified = append(hs.notModified, f)
		}
	}
	hs.notModified = hs.notModified[:len(hs.notModified):len(hs.notModified)]
	hs.full = hs.full[:len(hs.full):len(hs.full)]
	return hs
}

func indexField(fields []field, key string) int {
	for i, f := range fields {
		if f.key == key {
			return i
		}
	}
	return -1
}

// headersFor returns the headers of f served at the request path p: f's defaults when no
// _headers rule matches p, else a set built for the matching rules. interned, if not nil,
// shares equal sets between paths (NewSite); at request time it is nil.
func (s *Site) headersFor(f *file, p string, interned map[string]*headerSet) *headerSet {
	var matched []int
	for i, r := range s.headerRules {
		if matchPattern(r.pattern, p) {
			matched = append(matched, i)
		}
	}
	if len(matched) == 0 {
		return f.headers
	}
	if interned == nil {
		return newHeaderSet(f.defaults, s.headerRules, matched)
	}
	key := fmt.Sprint(f.defaults, matched)
	hs := interned[key]
	if hs == nil {
		hs = newHeaderSet(f.defaults, s.headerRules, matched)
		interned[key] = hs
	}
	return hs
}

// matchPattern reports whether a _redirects or _headers pattern matches a path, skipping the
// matcher's allocations for literal patterns.
func matchPattern(pattern, p string) bool {
	if !strings.ContainsAny(pattern, ":*") {
		return pattern == p || strings.TrimSuffix(pattern, "/") == strings.TrimSuffix(p, "/")
	}
	_, ok := site.MatchRule(pattern, p)
	return ok
}

// defaultCacheControl chooses Cache-Control for a file no _headers rule overrides:
//
//   - fingerprinted files (see isFingerprinted) never change under their name:
//     "public, max-age=31536000, immutable";
//   - everything else, HTML or not, "public, max-age=0, must-revalidate": a deploy must show
//     everywhere at once, and a stylesheet cached for an hour next to fresh HTML is a broken
//     page. Revalidation is a 304 with a strong ETag that survives moving between edges, so it
//     costs a round trip and no body.
func defaultCacheControl(p, contentType string) string {
	if !isHTML(contentType) && isFingerprinted(path.Base(p)) {
		return ccImmutable
	}
	return ccRevalidate
}

func isHTML(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && (mt == "text/html" || mt == "application/xhtml+xml")
}

// isFingerprinted reports whether a file name carries a content hash, as bundlers write them
// (webpack "app.3f9a2c1b.js", Vite "index-B1x2Y3z4.js", Parcel "main.8e1a5e2f.css"): after the
// first dot- or dash-separated token of the name (without its extension), some token is at
// least 8 ASCII letters and digits with at least one of each. "jquery-3.7.1.min.js",
// "font-awesome.css" and "report-20240101.pdf" are not fingerprinted; a hash that happens to
// be all letters or all digits is missed, which costs a revalidation, never a stale file. Sites
// with other schemes set Cache-Control in _headers.
func isFingerprinted(name string) bool {
	if i := strings.LastIndexByte(name, '.'); i > 0 {
		name = name[:i]
	}
	first := true
	for tok := range strings.FieldsFuncSeq(name, func(r rune) bool { return r == '.' || r == '-' }) {
		if first {
			first = false
			continue
		}
		if len(tok) < fingerprintMinLen {
			continue
		}
		var letter, digit, other bool
		for i := 0; i < len(tok); i++ {
			switch c := tok[i]; {
			case '0' <= c && c <= '9':
				digit = true
			case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
				letter = true
			default:
				other = true
			}
		}
		if letter && digit && !other {
			return true
		}
	}
	return false
}

// validFieldName reports whether s is an HTTP token (RFC 9110 §5.1).
func validFieldName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

// validFieldValue reports whether s can be sent as a field value: no control characters but
// horizontal tab (RFC 9110 §5.5).
func validFieldValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// formatContentRange returns "bytes first-last/complete" (RFC 9110 §14.4).
func formatContentRange(r byteRange, size int64) string {
	b := make([]byte, 0, 64)
	b = append(b, "bytes "...)
	b = strconv.AppendInt(b, r.start, 10)
	b = append(b, '-')
	b = strconv.AppendInt(b, r.start+r.length-1, 10)
	b = append(b, '/')
	b = strconv.AppendInt(b, size, 10)
	return string(b)
}
