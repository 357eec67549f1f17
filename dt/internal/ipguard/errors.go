package ipguard

import "errors"

var (
	// ErrBlocked is returned by [Guard.Admit] when the remote address is blocked.
	ErrBlocked = errors.New("ipguard: address blocked")

	// ErrRateLimited is returned by [Guard.Admit] when the remote key opens connections faster
	// than its token bucket allows. It is a refusal, not a block.
	ErrRateLimited = errors.New("ipguard: connection rate exceeded")

	// ErrBusy is returned by [Guard.Admit] when the maximum number of handshakes is in flight.
	ErrBusy = errors.New("ipguard: too many handshakes in flight")

	// ErrInvalidAddress is returned by [Guard.Admit] for the zero [netip.Addr], and by
	// [Guard.Unblock] for an invalid prefix.
	ErrInvalidAddress = errors.New("ipguard: invalid address")

	// ErrNotBlocked is returned by [Guard.Unblock] when no current block lies within the prefix.
	ErrNotBlocked = errors.New("ipguard: not blocked")

	// ErrInvalidConfig is wrapped by every error [New] returns for a field of [Config].
	ErrInvalidConfig = errors.New("ipguard: invalid config")

	// ErrCorruptState is wrapped by every error decoding a stored state returns.
	ErrCorruptState = errors.New("ipguard: corrupt stored state")
)
