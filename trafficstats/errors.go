package trafficstats

import "errors"

var (
	// ErrNotStats is returned by Decode when the message is not a statistics message (another
	// type of dt message, which the caller should pass on to its own decoder).
	ErrNotStats = errors.New("trafficstats: not a stats message")
	// ErrInvalid is returned by Decode when a statistics message breaks a rule of its format: its
	// sender is faulty or hostile, and the whole message is refused.
	ErrInvalid = errors.New("trafficstats: invalid stats message")
)
