package accesslog

import (
	"net/http"
	"time"
)

// Entry is one response to log. Logger.Log copies what it needs and keeps no reference to it
// or to its strings, so the caller may reuse them (a server that recycles its request buffers).
type Entry struct {
	// Time is when the response ended.
	Time time.Time
	// Site is the name of the site that answered; empty when none claimed the host.
	Site string
	// Host is the request's Host (":authority" over HTTP/2).
	Host string
	// Method is the request's method.
	Method string
	// URI is the request target as the client sent it, query included (nginx's $request_uri).
	URI string
	// Proto is the protocol: "HTTP/1.1", "HTTP/2.0".
	Proto string
	// TLSVersion is the TLS version (tls.VersionTLS13, say); zero over plain TCP.
	TLSVersion uint16
	// Encoding is the content coding sent ("gzip", "br", "zstd"), empty for none.
	Encoding string
	// Referer and UserAgent are the request's fields of those names.
	Referer, UserAgent string
	// RemoteAddr is the client's "ip:port", as http.Request.RemoteAddr.
	RemoteAddr string
	// Status is the response status.
	Status int
	// Bytes are the body bytes sent.
	Bytes int64
	// Duration is how long the response took.
	Duration time.Duration
}

// SetRequest fills e's fields that come from the request: Host, Method, URI, Proto, TLSVersion,
// Referer, UserAgent and RemoteAddr. It keeps references to r's strings: log e before r may be
// reused.
func (e *Entry) SetRequest(r *http.Request) {
	e.Host, e.Method, e.URI, e.Proto, e.RemoteAddr = r.Host, r.Method, r.RequestURI, r.Proto, r.RemoteAddr
	if e.URI == "" && r.URL != nil { // a request made in-process rather than read from a connection
		e.URI = r.URL.RequestURI()
	}
	if r.TLS != nil {
		e.TLSVersion = r.TLS.Version
	}
	// The header's canonical keys, looked up directly: Get would canonicalise them again.
	if v := r.Header["Referer"]; len(v) > 0 {
		e.Referer = v[0]
	}
	if v := r.Header["User-Agent"]; len(v) > 0 {
		e.UserAgent = v[0]
	}
}

// field numbers the string fields of a record.
type field int

const (
	fSite field = iota
	fHost
	fMethod
	fURI
	fProto
	fEncoding
	fReferer
	fUserAgent
	fRemote
	nFields
)

// Caps of an Entry's longest string fields: a longer value is logged truncated to its first
// bytes. They bound a line's length whatever a client sends; nginx caps its whole
// request line at 8 KiB by default, but few paths worth reading exceed 1 KiB.
const (
	MaxURIBytes    = 1024
	MaxHeaderBytes = 512 // Referer and User-Agent each
	MaxHostBytes   = 256 // a DNS name is at most 253 bytes, then a port
)

// fieldCap is the cap of each string field.
var fieldCap = [nFields]int{
	fSite:      64, // site.MaxSiteName is 63
	fHost:      MaxHostBytes,
	fMethod:    16,
	fURI:       MaxURIBytes,
	fProto:     16,
	fEncoding:  16,
	fReferer:   MaxHeaderBytes,
	fUserAgent: MaxHeaderBytes,
	fRemote:    64, // "[IPv6%zone]:port"
}

// record is an Entry's fields as a line shows them: each string cut to its cap. It refers to
// the Entry's strings rather than copying them; the line is formatted from it before Log
// returns.
type record struct {
	unixNano, duration, bytes int64
	status, tlsVersion        uint16
	fields                    [nFields]string
}

// set points r at e's fields, truncating each string to its cap.
func (r *record) set(e *Entry) {
	r.unixNano, r.duration, r.bytes = e.Time.UnixNano(), int64(e.Duration), e.Bytes
	r.status, r.tlsVersion = uint16(min(max(e.Status, 0), 999)), e.TLSVersion
	for i, s := range [nFields]string{e.Site, e.Host, e.Method, e.URI, e.Proto, e.Encoding, e.Referer, e.UserAgent, e.RemoteAddr} {
		r.fields[i] = s[:min(len(s), fieldCap[i])]
	}
}

// get returns field f.
func (r *record) get(f field) string { return r.fields[f] }
