// Package fdcache keeps files open between uses, as nginx's open_file_cache does: a file
// opened once by key is handed out again without an open(2), an fstat(2) and a close(2) per
// use.
//
// It is meant for immutable files named by their content (blobs): an open descriptor stays right
// whatever happens to the name afterwards, so a cached file removed from the directory (by
// garbage collection) is still read through it, and a key never needs revalidating.
//
// # Guarantees
//
//   - At most Config.MaxIdle files are kept open while no one uses them; the least recently
//     used idle file is closed to make room. Files in use are not counted against that bound:
//     they are as many as the callers holding them, as when each opens its own.
//   - A file unused for Config.MaxIdleTime is closed at the cache's next use.
//   - A file is never closed while it is held (Acquire to Release): entries are counted.
//   - Close closes every idle file at once and every held one on its last Release.
//
// # Caveats
//
// The cache does not watch the files: a file changed in place (not replaced) is served as it
// now is, and a removed one keeps its disk space until evicted (MaxIdleTime bounds that while
// the cache is used). Keys must name content that never changes.
package fdcache
