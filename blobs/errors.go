package blobs

import "errors"

// Errors returned by the store. Check them with errors.Is; returned errors wrap them with the
// operation and the (short) hash.
var (
	// ErrHashMismatch is returned by Put when the data does not hash to the expected hash. Nothing
	// is stored.
	ErrHashMismatch = errors.New("blobs: data does not match its hash")
	// ErrCorrupt is returned by Verify and ReadAll when a stored blob no longer hashes to its name
	// (bit rot, or a file changed behind the store's back). Delete it and fetch it again.
	ErrCorrupt = errors.New("blobs: stored blob is corrupt")
	// ErrNotFound is returned when a blob is not in the store.
	ErrNotFound = errors.New("blobs: not found")
	// ErrInvalidHash is returned by ParseHash and UnmarshalText for anything but 64 lowercase hex
	// digits.
	ErrInvalidHash = errors.New("blobs: invalid hash")
	// ErrClosed is returned by writes to a store after Close, and by a Batch after Commit or
	// Discard.
	ErrClosed = errors.New("blobs: closed")
)
