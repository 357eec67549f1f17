package issuer

import "errors"

// ErrInvalidConfig is returned by New and NewLease for a configuration they cannot run with,
// wrapped with every problem found.
var ErrInvalidConfig = errors.New("issuer: invalid config")
