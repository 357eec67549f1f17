package httpserve

import "errors"

// ErrInvalidConfig is returned by New for a Config it cannot run with, joined with what is
// wrong.
var ErrInvalidConfig = errors.New("httpserve: invalid config")
