package h1

import (
	"bytes"
	"context"
	"net/http"
	"net/url"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// parseHead reads a request head of the common shape from buf, where it must be whole, and
// returns the request as http.ReadRequest followed by readRequest's checks would give it, with
// base's context (base is a request holding nothing else: see baseRequest), and the head's
// length in buf. It reports false, having read nothing, for a head of any other shape:
// http.ReadRequest then reads the same bytes, so that every unusual case (and every request
// refused) keeps net/http's rules by construction.
//
// The common shape is a request line with a token method other than CONNECT, an origin-form
// target and HTTP/1.0 or HTTP/1.1, then header fields with token names and values free of
// control characters, each line ended by CRLF, without obs-fold (RFC 9112 §5.2), with at most
// one Host, valid, present in HTTP/1.1, and none of the fields that ask for more than a head:
// Content-Length, Transfer-Encoding, Trailer, Expect, Pragma (which net/http turns into a
// Cache-Control). Such a request has no body.
//
// It costs a string for the head (the method, target and values are parts of it, and so are
// names already in canonical form), the header map, and one parsedRequest: the request, its
// URL, the values of up to inlineValues field lines (more take a []string of their own) and
// the handle on its response.
func parseHead(base *http.Request, buf []byte) (req *http.Request, n int, ok bool) {
	p, n, ok := parseHeadInto(base, buf)
	if !ok {
		return nil, 0, false
	}
	return &p.req, n, true
}

// parseHeadInto is parseHead, returning the request in the parsedRequest that holds it.
func parseHeadInto(base *http.Request, buf []byte) (p *parsedRequest, n int, ok bool) {
	end := bytes.Index(buf, headEnd)
	if end < 0 {
		return nil, 0, false
	}
	lines := bytes.Count(buf[:end], crlf) // header fields, the request line aside
	s := string(buf[:end+len(crlf)])
	line, s, _ := strings.Cut(s, "\r\n")
	var rl requestLine
	if !rl.parse(line) {
		return nil, 0, false
	}
	p = new(parsedRequest)
	values := p.values[:]
	if lines > len(values) {
		values = make([]string, lines)
	}
	h, host, ok := parseFields(s, lines, values)
	if !ok || host == "" && rl.minor == 1 || !httpguts.ValidHostHeader(host) {
		return nil, 0, false
	}
	// A copy of base carries its context: http.Request's is unexported, and WithContext
	// would allocate a request of its own.
	p.req = *base
	r := &p.req
	r.Method, r.RequestURI, r.Host, r.Header, r.Body = rl.method, rl.target, host, h, http.NoBody
	r.Proto, r.ProtoMajor, r.ProtoMinor = rl.proto, 1, rl.minor
	if r.URL = rl.url; r.URL == nil {
		p.url = rl.plain
		r.URL = &p.url
	}
	// As http.ReadRequest: HTTP/1.0 ends the connection unless asked not to (RFC 9112 §9.3).
	conn := h["Connection"]
	r.Close = httpguts.HeaderValuesContainsToken(conn, "close") ||
		r.ProtoMinor == 0 && !httpguts.HeaderValuesContainsToken(conn, "keep-alive")
	return p, end + len(headEnd), true
}

// inlineValues is how many field values a parsedRequest holds itself: enough for the requests
// of tools and benchmarks (a browser's, with more fields, takes a slice of its own), and few
// enough that a parsedRequest fits a 512-byte size class of the allocator.
const inlineValues = 3

// parsedRequest is what parseHead allocates for a request, in one piece, with the handle on its
// response that the handler gets (responseWriter).
type parsedRequest struct {
	req    http.Request
	url    url.URL
	values [inlineValues]string
	writer responseWriter
}

// baseRequest returns the request parseHead copies its requests from: one holding ctx.
func baseRequest(ctx context.Context) *http.Request {
	return new(http.Request).WithContext(ctx)
}

var headEnd = []byte("\r\n\r\n")

// requestLine is a request line of the common shape (see parseHead).
type requestLine struct {
	method, target, proto string
	minor                 int
	// url is the target's URL when url.ParseRequestURI made it; plain the target's otherwise.
	url   *url.URL
	plain url.URL
}

// parse parses line into rl; it reports false for a line not of the common shape.
func (rl *requestLine) parse(line string) bool {
	method, rest, ok1 := strings.Cut(line, " ")
	target, proto, ok2 := strings.Cut(rest, " ")
	if !ok1 || !ok2 || !isToken(method) || method == http.MethodConnect {
		return false
	}
	switch proto {
	case "HTTP/1.1":
		rl.minor = 1
	case "HTTP/1.0":
		rl.minor = 0
	default:
		return false
	}
	if !parseOriginForm(target, &rl.plain, &rl.url) {
		return false
	}
	rl.method, rl.target, rl.proto = method, target, proto
	return true
}

// parseOriginForm parses a request target in origin form (RFC 9112 §3.2.1) as
// url.ParseRequestURI does, into plain, or into a *parsed that url.ParseRequestURI made for a
// path that needs unescaping, or that url.URL keeps a RawPath for. It reports false for a
// target of another form.
func parseOriginForm(target string, plain *url.URL, parsed **url.URL) bool {
	if len(target) == 0 || target[0] != '/' {
		return false
	}
	path, query, hasQuery := strings.Cut(target, "?")
	for i := 0; i < len(path); i++ {
		if !plainPathByte[path[i]] {
			u, err := url.ParseRequestURI(target)
			*parsed = u
			return err == nil
		}
	}
	for i := 0; i < len(query); i++ {
		if c := query[i]; c <= ' ' || c >= 0x7f || c == '#' {
			return false
		}
	}
	// url.Parse's rule: a lone "?" at the end forces an empty query.
	*plain = url.URL{Path: path, RawQuery: query, ForceQuery: hasQuery && query == ""}
	return true
}

// plainPathByte holds the bytes that url.URL's path encoding leaves as they are: a path of only
// these is its own Path, with no RawPath.
var plainPathByte = byteSet("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.~$&+,/:;=@")

// tokenByte holds the bytes of a token (RFC 9110 §5.6.2), which names fields and methods.
var tokenByte = byteSet("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-.^_`|~")

func byteSet(s string) (set [256]bool) {
	for i := 0; i < len(s); i++ {
		set[s[i]] = true
	}
	return set
}

func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !tokenByte[s[i]] {
			return false
		}
	}
	return true
}

// parseFields parses the header section s, lines of "name: value" each ended by CRLF, into a
// header as textproto's reader gives it, Host taken out. n is the number of lines, to size the
// header, and values (n long at least) holds the values. ok is false for a section not of the
// common shape (see parseHead).
func parseFields(s string, n int, values []string) (h http.Header, host string, ok bool) {
	h = make(http.Header, n)
	hasHost := false
	for s != "" {
		i := strings.Index(s, "\r\n")
		name, value, found := strings.Cut(s[:i], ":")
		if !found || !isToken(name) {
			return nil, "", false
		}
		key := canonicalName(name)
		value = trimOWS(value)
		if !validValue(value) {
			return nil, "", false
		}
		s = s[i+len(crlf):]
		switch key {
		case "Host":
			if hasHost {
				return nil, "", false
			}
			host, hasHost = value, true
			continue
		case "Content-Length", "Transfer-Encoding", "Trailer", "Expect", "Pragma":
			return nil, "", false
		}
		if vv, dup := h[key]; dup {
			h[key] = append(vv, value)
			continue
		}
		// A slice of one, capped, so that a handler's append cannot overwrite the next value.
		vv := values[:1:1]
		vv[0], values = value, values[1:]
		h[key] = vv
	}
	return h, host, true
}

// trimOWS returns v without the optional whitespace (spaces and tabs, RFC 9110 §5.6.3) around
// it, as strings.Trim(v, " \t") would, without building a set of the two for every value.
func trimOWS(v string) string {
	for len(v) > 0 && (v[0] == ' ' || v[0] == '\t') {
		v = v[1:]
	}
	for len(v) > 0 && (v[len(v)-1] == ' ' || v[len(v)-1] == '\t') {
		v = v[:len(v)-1]
	}
	return v
}

// validValue reports whether a field value (trimmed) is one textproto and readRequest's checks
// both take: no control character but HTAB, no DEL.
func validValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// canonicalName returns name, a token, in textproto's canonical form: name itself when it is
// in that form already, a shared string for a common field, a new string otherwise.
func canonicalName(name string) string {
	var buf [64]byte
	b := append(buf[:0], name...)
	upper, canonical := true, true
	for i, c := range b {
		switch {
		case upper && 'a' <= c && c <= 'z':
			b[i], canonical = c-('a'-'A'), false
		case !upper && 'A' <= c && c <= 'Z':
			b[i], canonical = c+('a'-'A'), false
		}
		upper = c == '-'
	}
	if canonical {
		return name
	}
	if common, ok := commonFields[string(b)]; ok {
		return common
	}
	return string(b)
}

// commonFields are the names of fields browsers and tools send, shared by every request that
// sends them in another case.
var commonFields = func() map[string]string {
	m := make(map[string]string)
	for _, name := range []string{
		"Accept", "Accept-Encoding", "Accept-Language", "Cache-Control", "Connection", "Cookie",
		"Dnt", "Host", "If-Modified-Since", "If-None-Match", "If-Range", "Origin", "Priority",
		"Range", "Referer", "Sec-Ch-Ua", "Sec-Ch-Ua-Mobile", "Sec-Ch-Ua-Platform",
		"Sec-Fetch-Dest", "Sec-Fetch-Mode", "Sec-Fetch-Site", "Sec-Fetch-User", "Te",
		"Upgrade-Insecure-Requests", "User-Agent", "X-Forwarded-For", "X-Forwarded-Proto",
		"X-Real-Ip",
		// Fields that send a request to http.ReadRequest, matched in any case.
		"Content-Length", "Transfer-Encoding", "Trailer", "Expect", "Pragma",
	} {
		m[name] = name
	}
	return m
}()
