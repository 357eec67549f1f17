//go:build !unix

package cli

import "io/fs"

// ownerOf names a file's owner and group; this system does not say.
func ownerOf(fs.FileInfo) string { return "" }
