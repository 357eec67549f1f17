package edge

import (
	"net/http"

	"github.com/dt-cdn/dt/internal/sendconn"
)

// corkFor corks the request's connection for an HTTP/1.x response body of n bytes when that is
// worth it, and returns what sends the rest and uncorks (see sendconn.Cork).
func corkFor(w http.ResponseWriter, r *http.Request, n int64) (uncork func()) {
	return sendconn.Cork(w, r, n)
}
