package publish

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"hash"
	"io"
	"os"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/dt-cdn/dt/blobs"
	"github.com/dt-cdn/dt/site"
)

// memVariantMax is the largest variant kept in memory; bigger ones go to the plan's temporary
// directory. Small variants are most of a site's, and a file per variant would cost more than
// the bytes.
const memVariantMax = 256 << 10

// Compression chooses how hard Scan compresses variants: the trade between the time of a first
// publish and the bytes every later download saves.
type Compression int

const (
	// CompressionAuto is CompressionBest for a site of up to AutoBestMax bytes (all files) and
	// CompressionFast above: a typical site gets the smallest variants in seconds, and a very
	// large one is live in seconds instead of minutes. Republishing keeps the variants of
	// unchanged files (ScanOptions.Previous), so they are made only once either way.
	CompressionAuto Compression = iota
	// CompressionBest: brotli quality 11 up to 64 KiB per file (about 1 MB/s per CPU, 8–10%
	// smaller than quality 9 on HTML and JS), 9 up to 8 MiB, 6 above; zstd and gzip at their
	// best levels.
	CompressionBest
	// CompressionFast: brotli quality 6 (over ten times faster than 11 and within about 2% of
	// quality 9), zstd at its "better" level and gzip at level 6 (three times faster than 9 and
	// about 3% larger). zstd and gzip variants are
	// served only to clients without brotli, or when smaller than the brotli one, which at these
	// levels they rarely are.
	CompressionFast
)

// AutoBestMax is the largest site, in bytes of all its files, that CompressionAuto compresses
// with CompressionBest.
const AutoBestMax = 64 << 20

// ParseCompression parses the names "auto", "best" and "fast".
func ParseCompression(s string) (Compression, error) {
	switch s {
	case "auto":
		return CompressionAuto, nil
	case "best":
		return CompressionBest, nil
	case "fast":
		return CompressionFast, nil
	}
	return 0, fmt.Errorf("publish: compression %q: want auto, best or fast", s)
}

func (c Compression) String() string {
	switch c {
	case CompressionAuto:
		return "auto"
	case CompressionBest:
		return "best"
	case CompressionFast:
		return "fast"
	}
	return fmt.Sprintf("Compression(%d)", int(c))
}

// resolve turns CompressionAuto into Best or Fast for a site of total bytes.
func (c Compression) resolve(total int64) Compression {
	if c != CompressionAuto {
		return c
	}
	if total <= AutoBestMax {
		return CompressionBest
	}
	return CompressionFast
}

// brotliQuality picks the brotli quality for a file of size bytes. With CompressionBest: 11 (the
// best, about 1 MB/s) for files up to 64 KiB, most of a site's HTML and CSS; 9 (several times
// faster, a few percent larger) up to 8 MiB, where 11 would make a publish of a large site take
// minutes; 6 above.
func (c Compression) brotliQuality(size int64) int {
	switch {
	case c == CompressionFast:
		return 6
	case size <= 64<<10:
		return 11
	case size <= 8<<20:
		return 9
	default:
		return 6
	}
}

// keepVariant reports whether a variant of n bytes is worth keeping for a file of size bytes: it
// must save at least 5%, or the extra blob and the negotiation are not worth it.
func keepVariant(n, size int64) bool { return n > 0 && n <= size-size/20 }

// encoders are one worker's compressors, reused from file to file (the zstd and brotli encoders
// allocate megabytes of tables when built).
type encoders struct {
	compression Compression // never CompressionAuto
	derive      site.Deriver
	zstd        *zstd.Encoder
	gzip        *gzip.Writer
	brotli      map[int]*brotli.Writer // by quality
}

func newEncoders(c Compression) (*encoders, error) {
	level, gzipLevel := zstd.SpeedBestCompression, gzip.BestCompression
	if c == CompressionFast {
		level, gzipLevel = zstd.SpeedBetterCompression, gzip.DefaultCompression
	}
	// Concurrency 1: the encoder works in the calling goroutine (no goroutines to leak), and the
	// workers already use every CPU.
	z, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(level), zstd.WithEncoderConcurrency(1))
	if err != nil {
		return nil, fmt.Errorf("publish: zstd encoder: %w", err)
	}
	g, err := gzip.NewWriterLevel(nil, gzipLevel)
	if err != nil {
		return nil, fmt.Errorf("publish: gzip encoder: %w", err)
	}
	return &encoders{compression: c, zstd: z, gzip: g, brotli: map[int]*brotli.Writer{}}, nil
}

// close releases the zstd encoders' buffers.
func (e *encoders) close() {
	e.zstd.Close()
	e.derive.Close()
}

// derivedLevels are the levels of the derived zstd and gzip variants: those of the streamed ones.
func (c Compression) derivedLevels() (zstdLevel, gzipLevel int) {
	if c == CompressionFast {
		return int(zstd.SpeedBetterCompression), 6
	}
	return int(zstd.SpeedBestCompression), gzip.BestCompression
}

// deriveVariants makes the derived zstd and gzip variants of raw (Variant.Level) and adds those
// worth keeping to variants. Their bytes are not kept: they never travel, every node makes them.
func (e *encoders) deriveVariants(raw []byte, variants map[string]site.Variant) error {
	zl, gl := e.compression.derivedLevels()
	for _, d := range []struct {
		coding string
		level  int
	}{{site.EncodingZstd, zl}, {site.EncodingGzip, gl}} {
		b, err := e.derive.Derive(d.coding, d.level, raw)
		if err != nil {
			return err
		}
		if keepVariant(int64(len(b)), int64(len(raw))) {
			variants[d.coding] = site.Variant{Hash: blobs.Sum(b), Size: int64(len(b)), Level: d.level}
		}
	}
	return nil
}

// variantWriter compresses one file into one coding as the file is read, hashing the output and
// keeping it in memory or, for a large file, in a temporary file.
type variantWriter struct {
	coding string
	enc    io.WriteCloser
	out    variantSink
}

// variantSink receives compressed bytes and hashes them.
type variantSink struct {
	h    hash.Hash
	n    int64
	mem  *bytes.Buffer
	file *os.File
	err  error
}

func (s *variantSink) Write(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	s.h.Write(p)
	s.n += int64(len(p))
	if s.file != nil {
		_, s.err = s.file.Write(p)
		return len(p), s.err
	}
	return s.mem.Write(p)
}

// startVariants returns writers for the variants of a file of size bytes: br, zstd and gzip, or
// only br when brOnly. tempFile creates a temporary file for a large variant.
func (e *encoders) startVariants(size int64, brOnly bool, tempFile func() (*os.File, error)) ([]*variantWriter, error) {
	codings := []string{site.EncodingBrotli, site.EncodingZstd, site.EncodingGzip}
	if brOnly {
		codings = codings[:1]
	}
	vws := make([]*variantWriter, 0, len(codings))
	for _, coding := range codings {
		vw := &variantWriter{coding: coding, out: variantSink{h: sha256.New()}}
		if size > memVariantMax {
			f, err := tempFile()
			if err != nil {
				discardVariants(vws)
				return nil, err
			}
			vw.out.file = f
		} else {
			vw.out.mem = bytes.NewBuffer(make([]byte, 0, size/2))
		}
		switch coding {
		case site.EncodingBrotli:
			q := e.compression.brotliQuality(size)
			w := e.brotli[q]
			if w == nil {
				w = brotli.NewWriterOptions(&vw.out, brotli.WriterOptions{Quality: q})
				e.brotli[q] = w
			} else {
				w.Reset(&vw.out)
			}
			vw.enc = w
		case site.EncodingZstd:
			e.zstd.Reset(&vw.out)
			vw.enc = e.zstd
		case site.EncodingGzip:
			// The gzip header has no name and no modification time (RFC 1952 §2.3.1), so the
			// same content gives the same bytes, and the same deploy id.
			e.gzip.Reset(&vw.out)
			vw.enc = e.gzip
		}
		vws = append(vws, vw)
	}
	return vws, nil
}

// finishVariants flushes the compressors and returns the variants worth keeping, with where their
// bytes are. Temporary files of variants not kept are removed.
func finishVariants(vws []*variantWriter, size int64) (map[string]site.Variant, []blobSource, error) {
	var variants map[string]site.Variant
	var sources []blobSource
	var firstErr error
	for _, vw := range vws {
		err := vw.enc.Close()
		if err == nil {
			err = vw.out.err
		}
		if err != nil || !keepVariant(vw.out.n, size) {
			if err != nil && firstErr == nil {
				firstErr = fmt.Errorf("publish: compress (%s): %w", vw.coding, err)
			}
			vw.discard()
			continue
		}
		h := blobs.Hash(vw.out.h.Sum(nil))
		src := Source{Size: vw.out.n}
		if f := vw.out.file; f != nil {
			if err := f.Close(); err != nil {
				if firstErr == nil {
					firstErr = fmt.Errorf("publish: write variant: %w", err)
				}
				os.Remove(f.Name())
				continue
			}
			src.Temp = f.Name()
		} else {
			src.Data = vw.out.mem.Bytes()
		}
		if variants == nil {
			variants = map[string]site.Variant{}
		}
		variants[vw.coding] = site.Variant{Hash: h, Size: vw.out.n}
		sources = append(sources, blobSource{h, src})
	}
	if firstErr != nil {
		for _, s := range sources {
			if s.src.Temp != "" {
				os.Remove(s.src.Temp)
			}
		}
		return nil, nil, firstErr
	}
	return variants, sources, nil
}

// discard drops a variant, removing its temporary file.
func (vw *variantWriter) discard() {
	if f := vw.out.file; f != nil {
		f.Close()
		os.Remove(f.Name())
	}
}

func discardVariants(vws []*variantWriter) {
	for _, vw := range vws {
		vw.discard()
	}
}
