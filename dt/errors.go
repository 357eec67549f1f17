package dt

import "errors"

// Errors returned by the table. Check them with errors.Is; returned errors wrap them with the
// operation and, for network input, the peer.
var (
	// ErrNotMaster is returned by AddObject, RemoveObject, Put and Delete on a node without a master key.
	ErrNotMaster = errors.New("dt: only a master node can change the table")
	// ErrClosed is returned by operations on a node after Close.
	ErrClosed = errors.New("dt: node closed")
	// ErrNotFound is returned when a key or object id is not in the table.
	ErrNotFound = errors.New("dt: not found")
	// ErrMalformed is returned when bytes from the network or disk do not decode; from a peer it is
	// grounds for dropping the link and counting a strike against its address.
	ErrMalformed = errors.New("dt: malformed data")
	// ErrForged is returned for a record whose signature does not verify or whose signer is not a
	// trusted master.
	ErrForged = errors.New("dt: record not signed by a trusted master")
	// ErrWrongTable is returned for a record of another table or epoch.
	ErrWrongTable = errors.New("dt: record of another table")
	// ErrClockAhead is returned for a record whose clock runs too far ahead of the local clock.
	ErrClockAhead = errors.New("dt: record clock too far in the future")
	// ErrExpired is returned for a record older than the tombstone horizon that the node does not
	// already hold: it may be one whose deletion was already collected, so it is not resurrected.
	ErrExpired = errors.New("dt: record older than the tombstone horizon")
	// ErrTooLarge is returned for an object or message over its size limit.
	ErrTooLarge = errors.New("dt: too large")
	// ErrBodyMismatch is returned when a fetched body does not hash to the record's content hash.
	ErrBodyMismatch = errors.New("dt: body does not match its hash")
	// ErrKeyExists is returned by GenerateKeys when a key file already exists.
	ErrKeyExists = errors.New("dt: key file exists; refusing to overwrite")
	// ErrBadKeyFile is returned for a key file that does not hold a key of the right size.
	ErrBadKeyFile = errors.New("dt: bad key file")
	// ErrMasterNotTrusted is returned when master.key does not match any key in master.pub.
	ErrMasterNotTrusted = errors.New("dt: master.key does not match any key in master.pub")
	// ErrBadGrant is returned for a grant body that is not the canonical form of a valid grant
	// (see GrantKeyPrefix).
	ErrBadGrant = errors.New("dt: malformed grant")
	// ErrOutsideGrant is returned for a record whose signer's grant does not cover its key, its
	// operation or its clock; the error names the rule that refused it.
	ErrOutsideGrant = errors.New("dt: record outside its signer's grant")
	// ErrRefused is returned by WaitReplicated when a peer refused the record the node wrote
	// (outside its signer's grant, or its signer holds none); the error is a *VerdictError with
	// the peer's reason.
	ErrRefused = errors.New("dt: record refused by a peer")
	// ErrPending is returned by WaitReplicated when it gave up while a peer still kept the record
	// waiting for its signer's grant; the error is a *VerdictError with the peer's reason.
	ErrPending = errors.New("dt: record waits for its signer's grant on a peer")
	// ErrNotReady is returned when a master gives up waiting to learn the network's state.
	ErrNotReady = errors.New("dt: node has not synchronised with any peer yet")
)
