package zone

import "errors"

// Errors of the package. Returned errors wrap them with the place and the reason; check them with
// errors.Is.
var (
	// ErrSyntax is returned when a zone file does not parse (the wrapped error names the line).
	ErrSyntax = errors.New("zone: syntax error")
	// ErrInvalid is returned when a zone parses but breaks a rule of a well-formed zone (RFC 1034,
	// RFC 2181) or a limit of this package.
	ErrInvalid = errors.New("zone: invalid zone")
	// ErrBadSet is returned by DecodeSet for a body that is not a valid RRset in canonical form.
	ErrBadSet = errors.New("zone: bad RRset record")
)
