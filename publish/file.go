package publish

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"maps"
	"sync"

	"github.com/jotfs/fastcdc-go"

	"github.com/dt-cdn/dt/blobs"
	"github.com/dt-cdn/dt/site"
)

// fileResult is what processing one file yields: its manifest entry and where its blobs are.
type fileResult struct {
	file    site.File
	sources []blobSource
}

// blobSource pairs a blob with where its bytes are.
type blobSource struct {
	h   blobs.Hash
	src Source
}

// sniffLen is how much of a file http.DetectContentType looks at.
const sniffLen = 512

// processFile reads one file once: it hashes it, splits it into chunks when it is large, and
// feeds its compressors, all from the same read.
func (s *scanner) processFile(ctx context.Context, enc *encoders, e entry) (_ fileResult, err error) {
	f, err := s.root.Open(e.rel)
	if err != nil {
		return fileResult{}, fmt.Errorf("publish: open %s: %w", e.rel, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fileResult{}, fmt.Errorf("publish: stat %s: %w", e.rel, err)
	}
	if !fi.Mode().IsRegular() {
		// It was a regular file when the directory was listed.
		return fileResult{}, fmt.Errorf("%w: %s (became a %v)", ErrChanged, e.rel, fi.Mode().Type())
	}
	size := fi.Size()
	head := make([]byte, sniffLen)
	n, err := io.ReadFull(f, head)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		return fileResult{}, fmt.Errorf("publish: read %s: %w", e.rel, err)
	}
	head = head[:n]
	typ := contentType(e.rel, head)

	whole := sha256.New()
	sinks := []io.Writer{whole}
	var vws []*variantWriter
	defer func() {
		if vws != nil { // a failure before finishVariants: drop what was compressed
			discardVariants(vws)
		}
	}()
	wantVariants := size > 0 && size <= s.opts.MaxCompressSize && compressible(typ)
	// With a previous deploy to reuse variants from, hash first and compress only content that
	// is new (a second read); without, hash and compress in one pass.
	deferVariants := wantVariants && s.reuse != nil
	// A file below ChunkThreshold with a br variant travels as that variant alone: the nodes
	// make its raw content and its zstd and gzip variants themselves (site.File.RawFrom,
	// site.Variant.Level), so the raw bytes are kept here to derive those from.
	derive := wantVariants && size < ChunkThreshold
	var raw *bytes.Buffer
	if wantVariants && !deferVariants {
		if derive {
			raw = bytes.NewBuffer(make([]byte, 0, size))
			sinks = append(sinks, raw)
		}
		if vws, err = enc.startVariants(size, derive, s.tempFile); err != nil {
			return fileResult{}, err
		}
		for _, vw := range vws {
			sinks = append(sinks, vw.enc)
		}
	}
	r := io.TeeReader(&progressReader{ctx: ctx, r: io.MultiReader(bytes.NewReader(head), f), s: s}, io.MultiWriter(sinks...))
	var chunks []site.Chunk
	var sources []blobSource
	var read int64
	if size >= ChunkThreshold {
		chunks, sources, read, err = chunkFile(r, e.rel)
	} else {
		read, err = io.Copy(io.Discard, r)
	}
	if err != nil {
		return fileResult{}, fmt.Errorf("publish: read %s: %w", e.rel, err)
	}
	if read != size {
		return fileResult{}, fmt.Errorf("%w: %s: %d bytes read, %d expected", ErrChanged, e.rel, read, size)
	}
	h := blobs.Hash(whole.Sum(nil))
	if len(chunks) <= 1 {
		// Small, or one chunk (content with no cut point, such as zeros): the file is one blob.
		chunks = nil
		sources = []blobSource{{h, Source{Size: size, File: e.rel}}}
	}
	res := fileResult{file: site.File{Hash: h, Size: size, Type: typ, Chunks: chunks}, sources: sources}
	if deferVariants {
		if prev, ok := s.reuse[h]; ok {
			res.file.Variants, res.file.RawFrom = maps.Clone(prev.Variants), prev.RawFrom
			return res, nil
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return fileResult{}, fmt.Errorf("publish: read %s again: %w", e.rel, err)
		}
		if vws, err = enc.startVariants(size, derive, s.tempFile); err != nil {
			return fileResult{}, err
		}
		encs := make([]io.Writer, len(vws))
		for i, vw := range vws {
			encs[i] = vw.enc
		}
		if derive {
			raw = bytes.NewBuffer(make([]byte, 0, size))
			encs = append(encs, raw)
		}
		// The content must be what was hashed: a file changed between the reads fails the scan.
		again := sha256.New()
		if _, err := io.Copy(io.MultiWriter(append(encs, again)...), f); err != nil {
			return fileResult{}, fmt.Errorf("publish: read %s: %w", e.rel, err)
		}
		if blobs.Hash(again.Sum(nil)) != h {
			return fileResult{}, fmt.Errorf("%w: %s changed while it was read", ErrChanged, e.rel)
		}
	}
	if vws != nil {
		variants, vsrc, err := finishVariants(vws, size)
		vws = nil
		if err != nil {
			return fileResult{}, fmt.Errorf("publish: %s: %w", e.rel, err)
		}
		if _, ok := variants[site.EncodingBrotli]; ok && raw != nil {
			if err := enc.deriveVariants(raw.Bytes(), variants); err != nil {
				return fileResult{}, fmt.Errorf("publish: %s: %w", e.rel, err)
			}
			res.file.RawFrom = site.EncodingBrotli
		}
		res.file.Variants = variants
		res.sources = append(res.sources, vsrc...)
	}
	return res, nil
}

// fastcdcMu serialises the use of fastcdc-go. Its NewChunker (v0.2.0) rewrites the package's
// gear table in place (XOR with the seed, even a zero one) while any other chunker reads it, so
// two chunkers in one process race. Only files of ChunkThreshold bytes or more take it; smaller
// files are hashed and compressed meanwhile.
var fastcdcMu sync.Mutex

// chunkFile splits the raw bytes of a large file into content-defined chunks (FastCDC, Xia et
// al., USENIX ATC 2016) and hashes each. It returns the chunks, where each one is in the file,
// and the bytes read.
func chunkFile(r io.Reader, rel string) ([]site.Chunk, []blobSource, int64, error) {
	fastcdcMu.Lock()
	defer fastcdcMu.Unlock()
	// Seed must stay zero: a non-zero seed would change the shared table for every later chunker.
	c, err := fastcdc.NewChunker(r, fastcdc.Options{MinSize: ChunkMin, AverageSize: ChunkAverage, MaxSize: ChunkMax})
	if err != nil {
		return nil, nil, 0, fmt.Errorf("chunker: %w", err)
	}
	var chunks []site.Chunk
	var sources []blobSource
	var total int64
	for {
		ch, err := c.Next()
		if errors.Is(err, io.EOF) {
			return chunks, sources, total, nil
		}
		if err != nil {
			return nil, nil, 0, err
		}
		h := blobs.Sum(ch.Data)
		size := int64(ch.Length)
		chunks = append(chunks, site.Chunk{Hash: h, Size: size})
		sources = append(sources, blobSource{h, Source{Size: size, File: rel, Offset: int64(ch.Offset)}})
		total += size
	}
}

// progressReader counts the bytes read for the progress callback and stops reading when the
// scan is cancelled.
type progressReader struct {
	ctx context.Context
	r   io.Reader
	s   *scanner
}

func (p *progressReader) Read(b []byte) (int, error) {
	if err := p.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := p.r.Read(b)
	p.s.addBytes(int64(n))
	return n, err
}
