package publish

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
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
// feeds its compressors, all from the same read. With a previous deploy to reuse variants from,
// it hashes first and compresses only content that is new, in a second read.
func (s *scanner) processFile(ctx context.Context, enc *encoders, e entry) (fileResult, error) {
	f, size, err := s.openRegular(e.rel)
	if err != nil {
		return fileResult{}, err
	}
	defer f.Close()
	head, err := sniff(f, e.rel)
	if err != nil {
		return fileResult{}, err
	}
	typ := contentType(e.rel, head)
	wantVariants := size > 0 && size <= s.opts.MaxCompressSize && compressible(typ)
	deferVariants := wantVariants && s.reuse != nil
	// A file below ChunkThreshold with a br variant travels as that variant alone: the nodes
	// make its raw content and its zstd and gzip variants themselves (site.File.RawFrom,
	// site.Variant.Level), so the raw bytes are kept here to derive those from.
	derive := wantVariants && size < ChunkThreshold
	var c compression
	defer c.discard() // a failure before finish: drop what was compressed
	if wantVariants && !deferVariants {
		if c, err = startCompression(enc, size, derive, s.tempFile); err != nil {
			return fileResult{}, err
		}
	}
	res, err := s.hashFile(ctx, f, head, e.rel, size, c.writers())
	if err != nil {
		return fileResult{}, err
	}
	res.file.Type = typ
	if deferVariants {
		if prev, ok := s.reuse[res.file.Hash]; ok {
			res.file.Variants, res.file.RawFrom = maps.Clone(prev.Variants), prev.RawFrom
			return res, nil
		}
		if c, err = s.compressAgain(f, enc, e.rel, size, derive, res.file.Hash); err != nil {
			return fileResult{}, err
		}
	}
	if err := c.finish(enc, &res, e.rel, size); err != nil {
		return fileResult{}, err
	}
	return res, nil
}

// openRegular opens a file of the site and returns it with its size, refusing one that is no
// longer a regular file: it was one when the directory was listed.
func (s *scanner) openRegular(rel string) (*os.File, int64, error) {
	f, err := s.root.Open(rel)
	if err != nil {
		return nil, 0, fmt.Errorf("publish: open %s: %w", rel, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("publish: stat %s: %w", rel, err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, 0, fmt.Errorf("%w: %s (became a %v)", ErrChanged, rel, fi.Mode().Type())
	}
	return f, fi.Size(), nil
}

// sniff reads the start of a file, as much as http.DetectContentType looks at.
func sniff(r io.Reader, rel string) ([]byte, error) {
	head := make([]byte, sniffLen)
	n, err := io.ReadFull(r, head)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, fmt.Errorf("publish: read %s: %w", rel, err)
	}
	return head[:n], nil
}

// hashFile reads the rest of a file after head, once: it hashes the whole, splits it into chunks
// when it is ChunkThreshold bytes or more, counts the progress and feeds extra (the compressors)
// as it goes. A file whose length is not size changed since it was listed.
func (s *scanner) hashFile(ctx context.Context, f io.Reader, head []byte, rel string, size int64, extra []io.Writer) (fileResult, error) {
	whole := sha256.New()
	sinks := io.MultiWriter(append([]io.Writer{whole}, extra...)...)
	r := io.TeeReader(&progressReader{ctx: ctx, r: io.MultiReader(bytes.NewReader(head), f), s: s}, sinks)
	var (
		chunks  []site.Chunk
		sources []blobSource
		read    int64
		err     error
	)
	if size >= ChunkThreshold {
		chunks, sources, read, err = chunkFile(r, rel)
	} else {
		read, err = io.Copy(io.Discard, r)
	}
	if err != nil {
		return fileResult{}, fmt.Errorf("publish: read %s: %w", rel, err)
	}
	if read != size {
		return fileResult{}, fmt.Errorf("%w: %s: %d bytes read, %d expected", ErrChanged, rel, read, size)
	}
	h := blobs.Hash(whole.Sum(nil))
	if len(chunks) <= 1 {
		// Small, or one chunk (content with no cut point, such as zeros): the file is one blob.
		chunks = nil
		sources = []blobSource{{h, Source{Size: size, File: rel}}}
	}
	return fileResult{file: site.File{Hash: h, Size: size, Chunks: chunks}, sources: sources}, nil
}

// compressAgain reads a file a second time to compress it, for content the previous deploy did
// not have. The content must be what was hashed (h): a file changed between the reads fails the
// scan.
func (s *scanner) compressAgain(f io.ReadSeeker, enc *encoders, rel string, size int64, derive bool, h blobs.Hash) (compression, error) {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return compression{}, fmt.Errorf("publish: read %s again: %w", rel, err)
	}
	c, err := startCompression(enc, size, derive, s.tempFile)
	if err != nil {
		return compression{}, err
	}
	again := sha256.New()
	if _, err := io.Copy(io.MultiWriter(append(c.writers(), again)...), f); err != nil {
		c.discard()
		return compression{}, fmt.Errorf("publish: read %s: %w", rel, err)
	}
	if blobs.Hash(again.Sum(nil)) != h {
		c.discard()
		return compression{}, fmt.Errorf("%w: %s changed while it was read", ErrChanged, rel)
	}
	return c, nil
}

// compression is one file's compressors while it is read, and its raw bytes when they are kept
// to derive the other variants from a br one. The zero value compresses nothing.
type compression struct {
	vws []*variantWriter
	raw *bytes.Buffer
}

// startCompression starts the compressors of a file of size bytes; derive keeps its raw bytes
// and compresses to br alone (the other variants are derived from it).
func startCompression(enc *encoders, size int64, derive bool, tempFile func() (*os.File, error)) (compression, error) {
	vws, err := enc.startVariants(size, derive, tempFile)
	if err != nil {
		return compression{}, err
	}
	c := compression{vws: vws}
	if derive {
		c.raw = bytes.NewBuffer(make([]byte, 0, size))
	}
	return c, nil
}

// writers are what the file's bytes are copied to.
func (c *compression) writers() []io.Writer {
	w := make([]io.Writer, 0, len(c.vws)+1)
	for _, vw := range c.vws {
		w = append(w, vw.enc)
	}
	if c.raw != nil {
		w = append(w, c.raw)
	}
	return w
}

// discard drops what was compressed, unless finish took it. Safe to call twice.
func (c *compression) discard() {
	if c.vws != nil {
		discardVariants(c.vws)
		c.vws = nil
	}
}

// finish ends the compressors and records in res the variants worth keeping and where their
// bytes are. With a br variant and the raw bytes, it marks the file as derived from br and fills
// in the derived variants' descriptions.
func (c *compression) finish(enc *encoders, res *fileResult, rel string, size int64) error {
	if c.vws == nil {
		return nil
	}
	vws := c.vws
	c.vws = nil // finishVariants owns them now, even when it fails
	variants, vsrc, err := finishVariants(vws, size)
	if err != nil {
		return fmt.Errorf("publish: %s: %w", rel, err)
	}
	if _, ok := variants[site.EncodingBrotli]; ok && c.raw != nil {
		if err := enc.deriveVariants(c.raw.Bytes(), variants); err != nil {
			return fmt.Errorf("publish: %s: %w", rel, err)
		}
		res.file.RawFrom = site.EncodingBrotli
	}
	res.file.Variants = variants
	res.sources = append(res.sources, vsrc...)
	return nil
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
