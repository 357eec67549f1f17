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
	e.SetRequest(r)
	l.Log(&e)
}

var _ static.RequestObserver = (*service)(nil)
