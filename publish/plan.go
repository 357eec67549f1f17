package publish

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"maps"
	"os"
	"slices"

	"github.com/dt-cdn/dt/blobs"
	"github.com/dt-cdn/dt/site"
)

// Plan is the result of Scan: a deploy ready to publish. Its fields are for reading; the plan
// holds the site directory open and, for large variants, temporary files, until Close.
type Plan struct {
	// Manifest is the deploy. It is valid (site.Manifest.Validate) and not yet signed; its
	// Created is ScanOptions.Created.
	Manifest *site.Manifest
	// Sources says where the bytes of every blob of the manifest are (each blob once).
	Sources map[blobs.Hash]Source
	// Warnings are problems that do not stop a publish (no /index.html, a .env file published
	// with IncludeHidden, a _redirects file below the root), in the order found.
	Warnings []string
	// Dir is the scanned directory.
	Dir string
	// Compression is how hard new variants were compressed (never CompressionAuto).
	Compression Compression

	root   *os.Root
	tmpDir string
}

// Source says where the bytes of one blob are: Size bytes of the site file File from Offset (a
// whole small file, or one chunk of a large one), or a compressed variant held in Data (small
// ones) or in the temporary file Temp. Read them with Plan.Open, which checks the hash.
type Source struct {
	Size   int64
	File   string // slash-separated, relative to Plan.Dir
	Offset int64
	Data   []byte
	Temp   string
}

// Open returns the bytes of blob h, streamed from where Sources says they are. The reader checks
// them as it goes: at the end it returns an error wrapping ErrChanged instead of io.EOF if they
// do not hash to h (the file changed since the scan), so a caller that sends what it reads must
// treat the blob as failed on any error. Close the reader.
func (p *Plan) Open(h blobs.Hash) (io.ReadCloser, error) {
	src, ok := p.Sources[h]
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrUnknownBlob, h.Short())
	}
	var r io.Reader
	var c io.Closer = io.NopCloser(nil)
	switch {
	case src.Temp != "":
		f, err := os.Open(src.Temp)
		if err != nil {
			return nil, fmt.Errorf("publish: open variant %s: %w", h.Short(), err)
		}
		r, c = f, f
	case src.File != "":
		f, err := p.root.Open(src.File)
		if err != nil {
			return nil, fmt.Errorf("publish: open %s: %w", src.File, err)
		}
		r, c = io.NewSectionReader(f, src.Offset, src.Size), f
	default:
		r = bytes.NewReader(src.Data)
	}
	return &verifyReader{r: io.LimitReader(r, src.Size+1), c: c, want: h, size: src.Size, h: sha256.New()}, nil
}

// ReadBlob returns the bytes of blob h, checked against h (an error wrapping ErrChanged if they
// no longer match).
func (p *Plan) ReadBlob(h blobs.Hash) ([]byte, error) {
	rc, err := p.Open(h)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b := make([]byte, 0, p.Sources[h].Size)
	buf := bytes.NewBuffer(b)
	if _, err := buf.ReadFrom(rc); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Close closes the site directory and removes the plan's temporary files. Sources holding Data
// stay readable; the others do not. Close is safe to call twice.
func (p *Plan) Close() error {
	var errs []error
	if p.root != nil {
		errs = append(errs, p.root.Close())
		p.root = nil
	}
	if p.tmpDir != "" {
		errs = append(errs, os.RemoveAll(p.tmpDir))
		p.tmpDir = ""
	}
	return errors.Join(errs...)
}

// verifyReader passes a blob's bytes through and checks their size and hash at the end.
type verifyReader struct {
	r    io.Reader
	c    io.Closer
	want blobs.Hash
	size int64
	n    int64
	h    hash.Hash
}

func (v *verifyReader) Read(b []byte) (int, error) {
	n, err := v.r.Read(b)
	v.h.Write(b[:n])
	v.n += int64(n)
	if errors.Is(err, io.EOF) {
		if v.n != v.size || blobs.Hash(v.h.Sum(nil)) != v.want {
			return n, fmt.Errorf("%w: blob %s no longer matches its hash", ErrChanged, v.want.Short())
		}
	}
	return n, err
}

func (v *verifyReader) Close() error { return v.c.Close() }

// Diff is what publishing a plan changes relative to the deploy before it.
type Diff struct {
	// Added, Changed and Deleted are site paths, sorted: new in the plan, different in it
	// (content, type or variants), and gone from it.
	Added, Changed, Deleted []string
	// RulesChanged reports that the redirects, headers, SPA or clean-URL settings differ.
	RulesChanged bool
	// Send are the blobs to send: every blob of the plan the network lacks, each once, in the
	// order of the sorted paths that need them (chunks in order, then variants).
	Send []blobs.Hash
	// SendBytes is the raw size of Send (before wire compression).
	SendBytes int64
}

// Empty reports whether the plan serves exactly what the previous deploy serves and nothing
// needs sending, so publishing it would change nothing but the deploy's time.
func (d Diff) Empty() bool {
	return len(d.Added) == 0 && len(d.Changed) == 0 && len(d.Deleted) == 0 && !d.RulesChanged && len(d.Send) == 0
}

// Diff compares the plan with the previous deploy (nil for the first) and lists the blobs to
// send: those has reports the network lacks. With has nil, the blobs of previous count as held
// and every other as lacking. Diff reads nothing from disk.
func (p *Plan) Diff(previous *site.Manifest, has func(blobs.Hash) bool) Diff {
	m := p.Manifest
	var prevFiles map[string]site.File
	if previous != nil {
		prevFiles = previous.Files
	}
	if has == nil {
		held := map[blobs.Hash]bool{}
		if previous != nil {
			for _, h := range previous.TableBlobs() {
				held[h] = true
			}
		}
		has = func(h blobs.Hash) bool { return held[h] }
	}
	var d Diff
	for _, path := range slices.Sorted(maps.Keys(m.Files)) {
		if old, ok := prevFiles[path]; !ok {
			d.Added = append(d.Added, path)
		} else if !sameFile(old, m.Files[path]) {
			d.Changed = append(d.Changed, path)
		}
	}
	for _, path := range slices.Sorted(maps.Keys(prevFiles)) {
		if _, ok := m.Files[path]; !ok {
			d.Deleted = append(d.Deleted, path)
		}
	}
	d.RulesChanged = previous == nil && (len(m.Redirects) > 0 || len(m.Headers) > 0 || m.SPA || m.CleanURLs) ||
		previous != nil && !sameRules(previous, m)
	seen := map[blobs.Hash]bool{}
	for _, path := range slices.Sorted(maps.Keys(m.Files)) {
		for _, h := range fileBlobs(m.Files[path]) {
			if !seen[h] {
				seen[h] = true
				if !has(h) {
					d.Send = append(d.Send, h)
					d.SendBytes += p.Sources[h].Size
				}
			}
		}
	}
	return d
}

// fileBlobs lists the blobs of one file: its content (or its chunks, in order), then its
// variants by coding.
// fileBlobs returns the blobs of a file that travel in the table (not those the nodes derive).
func fileBlobs(f site.File) []blobs.Hash {
	var out []blobs.Hash
	if len(f.Chunks) == 0 && f.RawFrom == "" {
		out = append(out, f.Hash)
	}
	for _, c := range f.Chunks {
		out = append(out, c.Hash)
	}
	for _, coding := range slices.Sorted(maps.Keys(f.Variants)) {
		if v := f.Variants[coding]; v.Level == 0 {
			out = append(out, v.Hash)
		}
	}
	return out
}

func sameFile(a, b site.File) bool {
	return a.Hash == b.Hash && a.Size == b.Size && a.Type == b.Type && slices.Equal(a.Chunks, b.Chunks) &&
		maps.Equal(a.Variants, b.Variants) && a.RawFrom == b.RawFrom
}

func sameRules(a, b *site.Manifest) bool {
	return a.SPA == b.SPA && a.CleanURLs == b.CleanURLs &&
		slices.Equal(a.Redirects, b.Redirects) &&
		slices.EqualFunc(a.Headers, b.Headers, func(x, y site.HeaderRule) bool {
			return x.Path == y.Path && slices.Equal(x.Values, y.Values)
		})
}
