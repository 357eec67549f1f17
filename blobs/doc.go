// Package blobs stores file data on disk, content-addressed and crash-safe.
//
// A blob is an immutable byte string named by its SHA-256 ([Hash]). dt nodes keep object bodies and
// site file data here; the records that name them live elsewhere (bbolt). A store is one directory:
//
//	DIR/lock        held (flock) by every open Store; see Open
//	DIR/tmp/put-*   blobs being written; never visible under a hash name
//	DIR/ab/cdef…    the blob whose hash is abcdef… (first two hex digits as a fan-out directory)
//
// Blobs never change once visible, so readers ([Store.Open], [Store.ReadAll], [Store.All]) take no
// locks and may hold a file open while the blob is deleted or written again.
//
// # Verify on write
//
// [Store.Put] hashes the bytes as it writes them to a temporary file and compares the sum with the
// expected hash before the blob becomes visible. Data whose SHA-256 differs is rejected with
// [ErrHashMismatch] and leaves nothing behind. A blob under a hash name therefore always held the
// right bytes when it was written; [Store.Verify] checks that it still does.
//
// # Crash safety
//
// Put writes the bytes to a new file in DIR/tmp, fsyncs it, renames it to its hash name and
// fsyncs the fan-out directory, creating that directory first if needed (and fsyncing DIR, once per
// fan-out directory and process, so the new directory entry is durable too). Put returns only after
// all of this, so a blob it reported stored survives power loss. A crash at any earlier point
// leaves no file under the hash name, only a temporary file, which the next [Open] removes. A full
// disk or any other read, write, sync or rename error is returned wrapped with the operation, and
// the temporary file is removed: there is never a partial blob.
//
// A [Batch] keeps the same promise for many small blobs: it issues the files' fsyncs in groups
// that run concurrently (a journalling filesystem folds them into few commits) and pays each
// directory fsync once per batch instead of once per blob.
//
// # Caveats
//
// Put of a hash that is already stored is a cheap no-op: it does not read its reader at all and
// does not rewrite the file; it returns the stored size. Consequently Put does not repair a blob
// that has rotted on disk: run Verify, Delete what it reports as [ErrCorrupt], then fetch it again.
//
// Two Puts of the same hash that race may both write a temporary file. The first to finish renames
// it into place; the other finds the blob there and drops its copy. Both succeed. (If both check
// at the same instant, both rename: the second replaces the file with identical, verified bytes,
// which readers cannot tell from the first; readers with the first open keep reading it.)
// A Put that finds the blob already there returns without any fsync; if a concurrent Put was just
// publishing that blob, it is durable once that other Put returns.
//
// Delete does not fsync: after a crash a deleted blob may reappear. That is harmless (it is still
// the right bytes, or it is a corrupt blob that Verify will report again).
//
// Only the blob's bytes are protected by its hash; reads through Open are not verified, so a caller
// serving data from a disk it does not trust should Verify first (ReadAll does verify).
//
// Temporary files are cleaned by Open only when no other Store holds the directory (checked with
// flock(2), which is advisory and may not work across NFS). On platforms without flock every Open
// cleans DIR/tmp, so there only one Store may use a directory at a time. A Store holds its lock
// until Close (or until the process exits); calling Close is optional but lets a later Open in the
// same process clean up.
//
// Options.NoSync skips every fsync; it is for tests and benchmarks only and voids the crash-safety
// promise (the verify-on-write promise still holds).
package blobs
