package site

import "errors"

// Errors returned by the package. Check them with errors.Is; returned errors wrap them with the
// path, rule or blob concerned.
var (
	// ErrInvalidPath is returned by CheckPath when a site path breaks one of its rules.
	ErrInvalidPath = errors.New("site: invalid site path")
	// ErrInvalidManifest is returned by Validate, Marshal and ParseManifest when a manifest is
	// malformed or breaks one of the rules of Validate.
	ErrInvalidManifest = errors.New("site: invalid manifest")
	// ErrNotCanonical is returned by ParseManifest when the bytes are valid JSON
	// for a manifest but not its canonical encoding (keys out of order, a time not in UTC,
	// unknown or duplicate fields, extra white space). Only canonical bytes hash to the id.
	ErrNotCanonical = errors.New("site: not canonical JSON")
	// ErrInvalidRule is wrapped by every *RuleError: a _redirects or _headers rule that does not
	// parse or that the edge could not carry out safely.
	ErrInvalidRule = errors.New("site: invalid rule")
	// ErrInvalidDeployID is returned by ParseDeployID for anything but 64 lowercase hex digits.
	ErrInvalidDeployID = errors.New("site: invalid deploy id")
	// ErrInvalidBlob is returned by DecodeBlob when a blob object is malformed: not JSON, an
	// unknown encoding, a size that does not match its data, or data that does not decompress.
	ErrInvalidBlob = errors.New("site: invalid blob object")
	// ErrBlobTooLarge is returned by DecodeBlob when a blob's size, claimed or decoded, is over
	// the caller's limit. Nothing larger than the limit is allocated.
	ErrBlobTooLarge = errors.New("site: blob over the size limit")
	// ErrInvalidCurrent is returned by ParseCurrent when a current pointer is malformed.
	ErrInvalidCurrent = errors.New("site: invalid current pointer")
	// ErrInvalidRecord is returned by ParseRecord, Validate, Marshal, NewRecord, CheckSiteName
	// and CheckHost when a site record, a site name or a host breaks one of their rules.
	ErrInvalidRecord = errors.New("site: invalid site record")
	// ErrInvalidHistory is returned by ParseHistory and History.Marshal when a site's list of
	// deploys is malformed, too long or lists a deploy twice.
	ErrInvalidHistory = errors.New("site: invalid site history")
)
