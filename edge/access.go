package edge

import (
	"net/http"
	"time"

	"github.com/dt-cdn/dt/accesslog"
	"github.com/dt-cdn/dt/static"
)

// logAccess hands one response to the access log. It runs on the request's goroutine once the
// response is written: Log copies the fields and never blocks.
func logAccess(l *accesslog.Logger, r *http.Request, site string, ri *static.ResponseInfo) {
	e := accesslog.Entry{Time: time.Now(), Site: site, Status: ri.Status, Bytes: ri.Bytes, Duration: ri.Duration,
		Encoding: ri.Encoding}
	if r != nil {
		e.Host, e.Method, e.URI, e.Proto, e.RemoteAddr = r.Host, r.Method, r.RequestURI, r.Proto, r.RemoteAddr
		if e.URI == "" { // a request made in-process rather than read from a connection
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
	l.Log(&e)
}

var _ static.RequestObserver = (*service)(nil)
