package site

import (
	"errors"
	"fmt"
	"maps"
	"mime"
	"slices"

	"github.com/dt-cdn/dt/blobs"
)

// Content codings of precompressed variants: the keys of File.Variants, as they appear in
// Accept-Encoding and Content-Encoding (RFC 9110 §8.4.1; "br" is RFC 7932, "zstd" RFC 8878).
const (
	EncodingBrotli = "br"
	EncodingZstd   = "zstd"
	EncodingGzip   = "gzip"
)

// maxTypeLen bounds a File.Type.
const maxTypeLen = 256

// maxManifestErrors is how many problems Validate reports before it stops.
const maxManifestErrors = 10

// Validate checks everything an edge relies on: the version; a creation time; every path
// (CheckPath) and file (a hash, a size, a Content-Type that parses as a media type); chunks that
// are non-empty and add up to the file's size (a single chunk must be the file itself); variants
// of a known coding that are non-empty and smaller than the file; that one hash never names two
// sizes; every redirect and header rule (the checks of ParseRedirects and ParseHeaders); at most
// MaxRules of each; and, with SPA, an /index.html to fall back to.
//
// Validate cannot check that hashes match content (it has none); edges verify blobs as they
// store them. Up to ten problems are reported, joined with errors.Join, each wrapping
// ErrInvalidManifest.
func (m *Manifest) Validate() error {
	var errs []error
	fail := func(format string, args ...any) bool {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidManifest}, args...)...))
		return len(errs) < maxManifestErrors
	}
	if m.Version != ManifestVersion {
		fail("version %d, want %d", m.Version, ManifestVersion)
	}
	if y := m.Created.Year(); y < 1970 || y > 9999 {
		fail("creation time %s is missing or out of range", m.Created.Format("2006-01-02"))
	}
	sizes := map[blobs.Hash]int64{}
	for _, p := range slices.Sorted(maps.Keys(m.Files)) {
		if err := CheckPath(p); err != nil && !fail("%w", err) {
			return errors.Join(errs...)
		}
		for _, why := range checkFile(m.Files[p], sizes) {
			if !fail("%s: %s", truncate(p), why) {
				return errors.Join(errs...)
			}
		}
	}
	if len(m.Redirects) > MaxRules || len(m.Headers) > MaxRules {
		fail("more than %d rules", MaxRules)
		return errors.Join(errs...)
	}
	for i, rd := range m.Redirects {
		if why := checkRedirect(rd); why != "" && !fail("redirect %d (%s): %s", i+1, truncate(rd.From), why) {
			return errors.Join(errs...)
		}
	}
	for i, h := range m.Headers {
		if why := checkHeaderRule(h); why != "" && !fail("header rule %d (%s): %s", i+1, truncate(h.Path), why) {
			return errors.Join(errs...)
		}
	}
	if _, ok := m.Files["/index.html"]; m.SPA && !ok {
		fail("SPA fallback without /index.html")
	}
	return errors.Join(errs...)
}

// checkFile checks one file and records the size of every hash it names in sizes.
func checkFile(f File, sizes map[blobs.Hash]int64) []string {
	var bad []string
	note := func(what string, h blobs.Hash, size int64) {
		if h.IsZero() {
			bad = append(bad, what+" has no hash")
			return
		}
		if prev, ok := sizes[h]; ok && prev != size {
			bad = append(bad, fmt.Sprintf("%s %s has size %d here and %d elsewhere", what, h.Short(), size, prev))
			return
		}
		sizes[h] = size
	}
	if f.Size < 0 {
		bad = append(bad, "negative size")
	}
	note("content", f.Hash, f.Size)
	if why := textProblem(f.Type, maxTypeLen); why != "" {
		bad = append(bad, "type: "+why)
	} else if _, _, err := mime.ParseMediaType(f.Type); err != nil {
		bad = append(bad, fmt.Sprintf("type %q is not a media type", f.Type))
	}
	bad = append(bad, checkChunks(f, note)...)
	for _, enc := range slices.Sorted(maps.Keys(f.Variants)) {
		v := f.Variants[enc]
		switch {
		case enc != EncodingBrotli && enc != EncodingZstd && enc != EncodingGzip:
			bad = append(bad, fmt.Sprintf("variant %q: unknown content coding", truncate(enc)))
		case v.Size <= 0 || v.Size >= f.Size:
			bad = append(bad, fmt.Sprintf("variant %s: size %d is not between 0 and the file's %d", enc, v.Size, f.Size))
		case v.Hash == f.Hash:
			bad = append(bad, fmt.Sprintf("variant %s is the raw content", enc))
		case v.Level != 0 && !validLevel(enc, v.Level):
			bad = append(bad, fmt.Sprintf("variant %s: level %d cannot be derived", enc, v.Level))
		default:
			note("variant "+enc, v.Hash, v.Size)
		}
	}
	if f.RawFrom != "" {
		if v, ok := f.Variants[f.RawFrom]; f.RawFrom != EncodingBrotli || !ok || v.Level != 0 || len(f.Chunks) > 0 {
			bad = append(bad, fmt.Sprintf("raw content from %q: not a brotli variant that travels, of an unchunked file", truncate(f.RawFrom)))
		}
	}
	return bad
}

// checkChunks checks that a file's chunks add up to it.
func checkChunks(f File, note func(string, blobs.Hash, int64)) []string {
	if len(f.Chunks) == 0 {
		return nil
	}
	if len(f.Chunks) == 1 && (f.Chunks[0].Hash != f.Hash || f.Chunks[0].Size != f.Size) {
		return []string{"a single chunk that is not the whole file"}
	}
	var sum int64
	for i, c := range f.Chunks {
		if c.Size <= 0 || c.Size > f.Size-sum {
			return []string{fmt.Sprintf("chunk %d: size %d does not fit in the file", i, c.Size)}
		}
		sum += c.Size
		note(fmt.Sprintf("chunk %d", i), c.Hash, c.Size)
	}
	if sum != f.Size {
		return []string{fmt.Sprintf("chunks add up to %d bytes, not the file's %d", sum, f.Size)}
	}
	return nil
}

// checkHeaderRule checks one block of a _headers file.
func checkHeaderRule(h HeaderRule) string {
	if _, why := checkPattern(h.Path); why != "" {
		return why
	}
	if len(h.Values) == 0 {
		return "no headers"
	}
	for _, kv := range h.Values {
		if why := checkHeader(kv[0], kv[1]); why != "" {
			return why
		}
	}
	return ""
}
