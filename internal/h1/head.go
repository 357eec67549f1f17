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
// ctx as its context, and the head's length in buf. It reports false, having read nothing, for
// a head of any other shape: http.ReadRequest then reads the same bytes, so that every unusual
// case (and every request refused) keeps net/http's rules by construction.
//
// The common shape is a request line with a token method other than CONNECT, an origin-form
// target and HTTP/1.0 or HTTP/1.1, then header fields with token names and values free of
// control characters, each line ended by CRLF, without obs-fold (RFC 9112 §5.2), with at most
// one Host, valid, present in HTTP/1.1, and none of the fields that ask for more than a head:
// Content-Length, Transfer-Encoding, Trailer, Expect, Pragma (which net/http turns into a
// Cache-Control). Such a request has no body.
//
// It costs a string for the head (the method, target and values are parts of it, and so are
// names already in canonical form), the header map, one []string backing for the values, the
// URL and the request.
func parseHead(ctx context.Context, buf []byte) (req *http.Request, n int, ok bool) {
	end := bytes.Index(buf, headEnd)
	if end < 0 {
		return nil, 0, false
	}
	lines := bytes.Count(buf[:end], crlf) // header fields, the request line aside
	s := string(buf[:end+len(crlf)])
	line, s, _ := strings.Cut(s, "\r\n")
	r, ok := parseRequestLine(line)
	if !ok {
		return nil, 0, false
	}
	if r.Header, r.Host, ok = parseFields(s, lines); !ok {
		return nil, 0, false
	}
	if r.Host == "" && r.ProtoMinor == 1 || !httpguts.ValidHostHeader(r.Host) {
		return nil, 0, false
	}
	// As http.ReadRequest: HTTP/1.0 ends the connection unless asked not to (RFC 9112 §9.3).
	conn := r.Header["Connection"]
	r.Close = httpguts.HeaderValuesContainsToken(conn, "close") ||
		r.ProtoMinor == 0 && !httpguts.HeaderValuesContainsToken(conn, "keep-alive")
	r.Body = http.NoBody
	// r stays on the stack: WithContext makes the one copy on the heap.
	return r.WithContext(ctx), end + len(headEnd), true
}

var headEnd = []byte("\r\n\r\n")

// parseRequestLine parses a request line of the common shape (see parseHead) into a request
// with its method, target and version; ok is false for any other.
func parseRequestLine(line string) (r http.Request, ok bool) {
	method, rest, ok1 := strings.Cut(line, " ")
	target, proto, ok2 := strings.Cut(rest, " ")
	if !ok1 || !ok2 || !isToken(method) || method == http.MethodConnect {
		return r, false
	}
	switch proto {
	case "HTTP/1.1":
		r.Proto, r.ProtoMajor, r.ProtoMinor = "HTTP/1.1", 1, 1
	case "HTTP/1.0":
		r.Proto, r.ProtoMajor, r.ProtoMinor = "HTTP/1.0", 1, 0
	default:
		return r, false
	}
	u, ok := parseOriginForm(target)
	if !ok {
		return r, false
	}
	r.Method, r.RequestURI, r.URL = method, target, u
	return r, true
}

// parseOriginForm parses a request target in origin form (RFC 9112 §3.2.1) as
// url.ParseRequestURI does. A path that needs unescaping, or that url.URL keeps a RawPath for,
// is left to url.ParseRequestURI itself.
func parseOriginForm(target string) (*url.URL, bool) {
	if len(target) == 0 || target[0] != '/' {
		return nil, false
	}
	path, query, hasQuery := strings.Cut(target, "?")
	for i := 0; i < len(path); i++ {
		if !plainPathByte[path[i]] {
			u, err := url.ParseRequestURI(target)
			return u, err == nil
		}
	}
	for i := 0; i < len(query); i++ {
		if c := query[i]; c <= ' ' || c >= 0x7f || c == '#' {
			return nil, false
		}
	}
	// url.Parse's rule: a lone "?" at the end forces an empty query.
	force := hasQuery && query == ""
	return &url.URL{Path: path, RawQuery: query, ForceQuery: force}, true
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
// header. ok is false for a section not of the common shape (see parseHead).
func parseFields(s string, n int) (h http.Header, host string, ok bool) {
	h = make(http.Header, n)
	values := make([]string, n)
	hasHost := false
	for s != "" {
		i := strings.Index(s, "\r\n")
		name, value, found := strings.Cut(s[:i], ":")
		if !found || !isToken(name) {
			return nil, "", false
		}
		key := canonicalName(name)
		value = strings.Trim(value, " \t")
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
