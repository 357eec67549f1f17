package redirector

import (
	"net/http"

	"github.com/dt-cdn/dt/internal/httpserve"
)

// NewFrontend gives the external tests the visitors' server as Node.Run makes it, without the
// connection caps.
func NewFrontend(h http.Handler, cfg FrontendConfig) (*httpserve.Server, error) {
	return newFrontend(h, cfg, nil)
}
