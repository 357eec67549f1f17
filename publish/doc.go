// Package publish turns a directory into a deploy: a site.Manifest and the blobs it names.
//
// [Scan] reads the directory once and returns a [Plan]: the manifest, and for every blob where
// its bytes are (a range of a site file, or a precompressed variant in memory or in a temporary
// file), so a publisher streams blobs without reading or compressing anything twice.
// [Plan.Diff] compares the plan with the deploy before it and lists the blobs the network lacks:
// only those are sent, so publishing the same content again sends no file data, and an edit to a
// large file resends only the chunks near the edit.
//
// # Guarantees
//
//   - Scan never reads outside the directory: it is opened as an [os.Root], so no symbolic link
//     or ".." can lead out of it, even one that appears while Scan runs. Links are refused
//     unless ScanOptions.FollowSymlinks, and then followed only inside the directory.
//   - Hidden files are refused unless ScanOptions.IncludeHidden; .git never leaves the machine.
//     Names that cannot be site paths (a newline, a backslash, invalid UTF-8) and special files
//     are refused. Refused files are named together in one error (up to 20), before any file is
//     read.
//   - _redirects and _headers are validated before any file is hashed; an error names
//     file:line.
//   - The manifest depends only on the directory's content and the options: the same directory
//     scanned twice with the same ScanOptions.Created gives the same site.DeployID, on any
//     machine (content types come from a built-in table first, and gzip headers carry no time).
//   - A file that changes while it is read fails the scan ([ErrChanged]); one that changes
//     after it is caught when the plan's reader for it reaches its end.
//
// # Large files and compression
//
// Files of [ChunkThreshold] bytes or more are split into chunks by FastCDC over their raw bytes
// (github.com/jotfs/fastcdc-go): 256 KiB to 4 MiB, 1 MiB on average. Text, JavaScript, JSON,
// SVG, XML, wasm and uncompressed fonts are precompressed into br (andybalholm/brotli), zstd and
// gzip (klauspost/compress); a variant is kept only when at least 5% smaller. A file below
// [ChunkThreshold] with a brotli variant travels as that variant alone: its raw content
// (site.File.RawFrom) and its zstd and gzip variants (site.Variant.Level, made with a
// site.Deriver) are made again on every node and checked against the manifest's hashes, so a
// changed text file costs its brotli bytes on the wire. How hard is a
// [Compression]: the best levels (brotli 11) for sites up to [AutoBestMax], fast ones above,
// unless ScanOptions.Compression says otherwise.
//
// # Sites
//
// [Publish], [PublishDir], [Deploys] and [Rollback] act on one site of the network
// (NetworkOptions.Site; left out, the network's only site): they read and move that site's
// current pointer (site.CurrentKeyOf; "site/current", as before there were sites, for
// site.DefaultSite) and its kept deploys (site.History; the default site's are the deploys no
// History lists, so its publishes write exactly what the previous release wrote). [AddSite],
// [SetSite], [RemoveSite] and [Sites] write and list the site records (site.Record). Blobs and
// manifests stay content-addressed and shared: a file two sites have is sent once, and
// collection frees a blob only when no kept deploy of any site names it.
//
// # Refused writes
//
// Every write waits for a peer's confirmation. A peer that refuses one of the session's records
// (outside the signing key's grant, or a key without one) says which and why, and the wait ends
// at once with an error wrapping [dt.ErrRefused] (a *dt.VerdictError carries the peer's
// reason); a peer that keeps a record waiting for the key's grant does not confirm it, and a wait
// that ends meanwhile wraps [dt.ErrPending]. A peer of a release without these reports confirms
// a record it refused like any other.
package publish
