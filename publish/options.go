package publish

import (
	"github.com/dt-cdn/dt/site"

	"os"
	"runtime"
	"time"
)

// Sizes of content-defined chunking (FastCDC): files of ChunkThreshold bytes or more are split
// into chunks of ChunkMin to ChunkMax bytes, ChunkAverage on average, cut where the content says
// (not at fixed offsets), so an insertion moves only the boundaries near it. Measured with these
// figures: 100 bytes inserted into a 64 MiB file resend 0.38 MiB this way and 54 MiB with fixed
// 1 MiB blocks.
const (
	ChunkThreshold = 4 << 20
	ChunkMin       = 256 << 10
	ChunkAverage   = 1 << 20
	ChunkMax       = 4 << 20
)

// DefaultMaxCompressSize is the largest file precompressed by default (ScanOptions.MaxCompressSize).
const DefaultMaxCompressSize = 64 << 20

// ScanOptions configure Scan. The zero value refuses hidden files and symbolic links, stamps the
// deploy with the current time and uses every CPU.
type ScanOptions struct {
	// IncludeHidden publishes hidden files and directories (names starting with "."). Without
	// it Scan refuses them, naming each; .env files are named as likely secrets. Two exceptions:
	// a .git file or directory is refused even with IncludeHidden (repository data is never site
	// content, and site.CheckPath refuses it), and /.well-known/ (RFC 8615: security.txt, app
	// links) is published without it, though hidden files inside it still need it.
	IncludeHidden bool
	// FollowSymlinks follows symbolic links that resolve inside the site directory (the file or
	// directory they point to is published under the link's name). Without it every link is
	// refused. Links that leave the directory, dangle or loop are refused either way: the
	// directory is opened as an os.Root, so no path Scan opens can resolve outside it.
	FollowSymlinks bool
	// SPA and CleanURLs are copied into the manifest (see site.Manifest).
	SPA, CleanURLs bool
	// KeepSPA and KeepCleanURLs leave that setting to the site: PublishDir takes it from the
	// site's record (site.Settings) when the record sets it, and otherwise from Previous when
	// there is one, so a republish that does not name a setting keeps it. Without either, SPA
	// and CleanURLs apply.
	KeepSPA, KeepCleanURLs bool
	// Created stamps the manifest (its Last-Modified on the edges). Zero: the current time,
	// truncated to the second. The deploy id covers it: give the same time (a build's
	// SOURCE_DATE_EPOCH, say) to get the same id for the same directory.
	Created time.Time
	// Workers bounds the goroutines that hash and compress files. Zero: GOMAXPROCS.
	Workers int
	// TempDir is where compressed variants too big to keep in memory are written until the plan
	// is closed. Zero: os.TempDir().
	TempDir string
	// MaxCompressSize is the size of the largest file precompressed. Larger files are served as
	// they are (they take long to compress at high quality and are often downloaded with Range
	// requests, which variants do not serve). Zero: DefaultMaxCompressSize; negative: never.
	MaxCompressSize int64
	// Compression chooses how hard variants are compressed; the zero value is CompressionAuto.
	Compression Compression
	// Previous is the deploy being replaced, when known. A file whose content is unchanged (the
	// same SHA-256 anywhere in Previous) takes its variants from there instead of being compressed
	// again, so rescanning a large site costs a read, not minutes of brotli. The network must
	// still hold those variant blobs (it does while Previous is current); Publish and PublishDir
	// check, and Plan.Sources has no entry for them.
	Previous *site.Manifest
	// Progress, when set, is called as files are read: with every file done and at least every
	// megabyte within a file. Calls come from the worker goroutines but never concurrently, and
	// the counts never go down. It should return quickly: workers wait for it.
	Progress func(Progress)
}

// withSiteSettings returns the options with the settings of set that o leaves to the site
// (KeepSPA, KeepCleanURLs) taken from set: a setting in the site's record comes before the
// previous deploy's.
func (o ScanOptions) withSiteSettings(set site.Settings) ScanOptions {
	if o.KeepSPA && set.SPA != nil {
		o.SPA, o.KeepSPA = *set.SPA, false
	}
	if o.KeepCleanURLs && set.CleanURLs != nil {
		o.CleanURLs, o.KeepCleanURLs = *set.CleanURLs, false
	}
	return o
}

// Progress reports how far a Scan is.
type Progress struct {
	Files, FilesTotal int   // files hashed, of all files
	Bytes, BytesTotal int64 // bytes read, of all file bytes
}

// withDefaults returns the options with every zero value replaced by its default.
func (o ScanOptions) withDefaults() ScanOptions {
	if o.Created.IsZero() {
		o.Created = time.Now().Truncate(time.Second)
	}
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	if o.TempDir == "" {
		o.TempDir = os.TempDir()
	}
	if o.MaxCompressSize == 0 {
		o.MaxCompressSize = DefaultMaxCompressSize
	}
	return o
}
