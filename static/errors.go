package static

import "errors"

// Errors returned by the package. Check them with errors.Is; returned errors wrap them with the
// operation and the path or blob concerned. None of them is ever sent to an HTTP client.
var (
	// ErrInvalidManifest is returned by NewSite when the manifest breaks the contract of package
	// site (site.Manifest.Validate, whose error it wraps too). Nothing of such a deploy is served.
	ErrInvalidManifest = errors.New("static: invalid manifest")
	// ErrMissingBlob is returned by NewSite when the blob source lacks a blob the deploy needs, or
	// holds it with another size. An edge serves a deploy only once it holds all of it.
	ErrMissingBlob = errors.New("static: blob missing")
	// ErrCorruptBlob is returned by NewSite when a blob it loads into memory does not hash to its
	// name: serving it would send wrong bytes under a strong ETag.
	ErrCorruptBlob = errors.New("static: blob does not match its hash")
)
