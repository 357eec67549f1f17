package rbsr

import "errors"

// Errors returned by the reconciliation. Check them with errors.Is; returned errors wrap them with
// what was wrong and where.
var (
	// ErrMalformed is returned when a received message does not follow the Negentropy v1 wire
	// format: a truncated or over-long varint, an id prefix longer than 32 bytes, bounds out of
	// order, an unknown mode, a length larger than the bytes left, too many ranges. The peer is
	// broken or hostile; drop the reconciliation.
	ErrMalformed = errors.New("rbsr: malformed message")
	// ErrUnsupportedVersion is returned when a received message starts with a protocol version
	// byte other than [ProtocolVersion] (0x61).
	ErrUnsupportedVersion = errors.New("rbsr: unsupported protocol version")
	// ErrState is returned when an [Initiator] is used out of order: Initiate called twice,
	// Reconcile before Initiate or after reconciliation finished.
	ErrState = errors.New("rbsr: initiator used out of order")
)
