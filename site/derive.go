package site

import (
	"bytes"
	"fmt"
	"io"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/dt-cdn/dt/blobs"
)

// Deriver makes derived variants (Variant.Level): the publisher makes them with it, and every
// node makes them again from the raw content, so that they need not travel. The same code and
// level give the same bytes. It reuses its encoders from call to call and is not safe for
// concurrent use.
type Deriver struct {
	zstd map[int]*zstd.Encoder
	gzip map[int]*gzip.Writer
}

// validLevel reports whether a variant of coding can be derived at level: zstd's encoder
// levels 1 to 4 (fastest to best), gzip's 1 to 9.
func validLevel(coding string, level int) bool {
	switch coding {
	case EncodingZstd:
		return level >= int(zstd.SpeedFastest) && level <= int(zstd.SpeedBestCompression)
	case EncodingGzip:
		return level >= gzip.BestSpeed && level <= gzip.BestCompression
	}
	return false
}

// Derive compresses raw into coding at level.
func (d *Deriver) Derive(coding string, level int, raw []byte) ([]byte, error) {
	if !validLevel(coding, level) {
		return nil, fmt.Errorf("site: no derived %s variant at level %d", coding, level)
	}
	switch coding {
	case EncodingZstd:
		if d.zstd == nil {
			d.zstd = map[int]*zstd.Encoder{}
		}
		enc := d.zstd[level]
		if enc == nil {
			var err error
			// Concurrency 1: the encoder works in the calling goroutine.
			if enc, err = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.EncoderLevel(level)), zstd.WithEncoderConcurrency(1)); err != nil {
				return nil, fmt.Errorf("site: zstd encoder: %w", err)
			}
			d.zstd[level] = enc
		}
		return enc.EncodeAll(raw, make([]byte, 0, len(raw)/2)), nil
	default: // gzip
		if d.gzip == nil {
			d.gzip = map[int]*gzip.Writer{}
		}
		var buf bytes.Buffer
		buf.Grow(len(raw) / 2)
		w := d.gzip[level]
		if w == nil {
			var err error
			if w, err = gzip.NewWriterLevel(&buf, level); err != nil {
				return nil, fmt.Errorf("site: gzip encoder: %w", err)
			}
			d.gzip[level] = w
		} else {
			w.Reset(&buf)
		}
		// No name and no modification time in the header (RFC 1952 §2.3.1): the same content
		// gives the same bytes.
		if _, err := w.Write(raw); err != nil {
			return nil, err
		}
		if err := w.Close(); err != nil {
			return nil, err
		}
		return buf.Bytes(), nil
	}
}

// Close releases the zstd encoders' buffers.
func (d *Deriver) Close() {
	for _, e := range d.zstd {
		e.Close()
	}
}

// RawFromBrotli decompresses a brotli variant into a file's raw content, which must be size
// bytes hashing to want: reading stops past size, so hostile data cannot make it allocate more.
func RawFromBrotli(variant []byte, size int64, want blobs.Hash) ([]byte, error) {
	raw := make([]byte, 0, size)
	buf := bytes.NewBuffer(raw)
	n, err := io.Copy(buf, io.LimitReader(brotli.NewReader(bytes.NewReader(variant)), size+1))
	if err != nil {
		return nil, fmt.Errorf("site: decompress brotli variant: %w", err)
	}
	if n != size {
		return nil, fmt.Errorf("site: brotli variant decompresses to %d bytes, not %d", n, size)
	}
	if got := blobs.Sum(buf.Bytes()); got != want {
		return nil, fmt.Errorf("site: brotli variant decompresses to %s, not %s: %w", got.Short(), want.Short(), blobs.ErrHashMismatch)
	}
	return buf.Bytes(), nil
}
