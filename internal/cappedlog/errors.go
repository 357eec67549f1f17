package cappedlog

import "errors"

// ErrClosed is returned by Write after Close.
var ErrClosed = errors.New("cappedlog: writer closed")

// ErrCap is returned by Create for a cap too small to keep half of it.
var ErrCap = errors.New("cappedlog: cap must be at least 2 bytes")
