package redirector

import "errors"

// Errors returned by the package. Check them with errors.Is; returned errors wrap them with the
// value concerned. None of them is ever sent to an HTTP client.
var (
	// ErrInvalidConfig is returned by NewHandler for a HandlerConfig it cannot run with.
	ErrInvalidConfig = errors.New("redirector: invalid config")
)
