package connlimit

import "errors"

// ErrInvalidConfig is returned by New when a Config field is out of range.
var ErrInvalidConfig = errors.New("connlimit: invalid config")
