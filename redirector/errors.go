package redirector

import "errors"

// Errors returned by the package. Check them with errors.Is; returned errors wrap them with the
// operation and the file or value concerned. None of them is ever sent to an HTTP client.
var (
	// ErrInvalidConfig is returned by NewHandler for a HandlerConfig it cannot run with.
	ErrInvalidConfig = errors.New("redirector: invalid config")
	// ErrBadGeoDB is returned by OpenGeoDB and GeoDB.Reload when the file is not a usable
	// MaxMind-format database (unreadable, too large, malformed or failing verification). Reload
	// keeps serving the database it had.
	ErrBadGeoDB = errors.New("redirector: bad GeoIP database")
	// ErrGeoDBChanged is returned by GeoDB.Reload when the file changed while it was read (a
	// copy still in progress); the watcher tries again at its next poll.
	ErrGeoDBChanged = errors.New("redirector: GeoIP database changed while being read")
	// ErrGeoDBClosed is returned by GeoDB methods after Close.
	ErrGeoDBClosed = errors.New("redirector: GeoIP database closed")
)
