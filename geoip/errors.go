package geoip

import "errors"

// Errors returned by the package. Check them with errors.Is; returned errors wrap them with the
// file concerned and the cause.
var (
	// ErrBadDB is returned by Open and DB.Reload when the file is not a usable MaxMind-format
	// database (unreadable, too large, malformed or failing verification). Reload keeps serving
	// the database it had.
	ErrBadDB = errors.New("geoip: bad GeoIP database")
	// ErrChanged is returned by DB.Reload when the file changed while it was read (a copy still in
	// progress); the watcher tries again at its next poll.
	ErrChanged = errors.New("geoip: GeoIP database changed while being read")
	// ErrClosed is returned by DB methods after Close.
	ErrClosed = errors.New("geoip: GeoIP database closed")
)
