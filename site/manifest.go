package site

import (
	"time"

	"github.com/dt-cdn/dt/blobs"
)

// ManifestVersion is the version of the manifest format written by this code.
const ManifestVersion = 1

// Manifest describes one deploy: every file of the site and the site's rules. Its id (DeployID) is
// the SHA-256 of its canonical JSON, so identical sites have identical ids on every machine.
type Manifest struct {
	Version int       `json:"v"`
	Created time.Time `json:"created"` // when it was published; edges use it as Last-Modified
	// Files maps a site path to its file. Paths are absolute, clean and case-sensitive
	// ("/index.html", "/css/site.css"), never with a dot segment, a ".git" segment or a trailing
	// slash; see CheckPath. A dot file (a name starting with ".") appears only when the publisher
	// asked for hidden files, or under /.well-known/ (RFC 8615).
	Files map[string]File `json:"files"`
	// Redirects are the rules of the site's _redirects file, in order.
	Redirects []Redirect `json:"redirects,omitempty"`
	// Headers are the rules of the site's _headers file, in order.
	Headers []HeaderRule `json:"headers,omitempty"`
	// SPA serves /index.html (with status 200) for paths that match no file and no rule, for
	// single-page applications that route in the browser.
	SPA bool `json:"spa,omitempty"`
	// CleanURLs serves /about.html at /about (and redirects /about.html to /about).
	CleanURLs bool `json:"clean_urls,omitempty"`
}

// File is one file of a deploy.
type File struct {
	// Hash and Size describe the raw content.
	Hash blobs.Hash `json:"hash"`
	Size int64      `json:"size"`
	// Type is the Content-Type to serve, with charset for text ("text/html; charset=utf-8").
	Type string `json:"type"`
	// Chunks, when present, are the raw content split by content-defined chunking, in order: the
	// blobs an edge holds for this file. Their sizes add up to Size and their concatenation hashes
	// to Hash. Absent: the content is the single blob Hash.
	Chunks []Chunk `json:"chunks,omitempty"`
	// Variants are precompressed representations, by content coding ("br", "zstd", "gzip"), each
	// a single blob, kept only when smaller than the raw content.
	Variants map[string]Variant `json:"variants,omitempty"`
	// RawFrom, when set, names the variant ("br", the only one allowed) that decompresses to the
	// raw content. The raw blob then does not travel in the table: each node makes it from that
	// variant and checks it against Hash. Never with Chunks.
	RawFrom string `json:"raw_from,omitempty"`
}

// Chunk is one piece of a chunked file.
type Chunk struct {
	Hash blobs.Hash `json:"hash"`
	Size int64      `json:"size"`
}

// Variant is one precompressed representation of a file.
type Variant struct {
	Hash blobs.Hash `json:"hash"`
	Size int64      `json:"size"`
	// Level, when not zero, makes the variant derived: it does not travel in the table, and each
	// node makes it from the raw content with a Deriver at this level. A node whose encoder makes
	// other bytes (another version) does not serve it. Only zstd and gzip variants are derived.
	Level int `json:"level,omitempty"`
}

// Redirect is one rule of a _redirects file (Netlify syntax):
//
//	/from  /to  [status][!]  [Key=value …]
//
// From may end in "*" (a splat: To may use ":splat") and may hold ":name" placeholders. Status is
// 301 unless given; 200 is a rewrite (the content of To is served at From). Force ("!") applies
// the rule even when a file exists at From.
type Redirect struct {
	From   string `json:"from"`
	To     string `json:"to"`
	Status int    `json:"status"`
	Force  bool   `json:"force,omitempty"`
}

// HeaderRule is one block of a _headers file: headers added to responses for paths that match
// Path (which may end in "*" or hold ":name" placeholders, as in Redirect.From).
type HeaderRule struct {
	Path   string      `json:"path"`
	Values [][2]string `json:"values"` // name, value; in file order
}

// Blobs returns every blob a deploy needs, each once: the raw content (or its chunks) and the
// variants of every file. An edge may serve a deploy only once it holds all of them.
func (m *Manifest) Blobs() []blobs.Hash { return m.blobs(false) }

// TableBlobs returns the blobs of Blobs that travel in the table as blob objects: all but the
// raw content of files with RawFrom and derived variants, which nodes make themselves.
func (m *Manifest) TableBlobs() []blobs.Hash { return m.blobs(true) }

// Derived reports whether a node makes blob h of the file itself (its raw content under
// RawFrom, or a derived variant) rather than taking it from the table.
func (f File) Derived(h blobs.Hash) bool {
	if f.RawFrom != "" && h == f.Hash && len(f.Chunks) == 0 {
		return true
	}
	for _, v := range f.Variants {
		if v.Level != 0 && v.Hash == h {
			return true
		}
	}
	return false
}

func (m *Manifest) blobs(tableOnly bool) []blobs.Hash {
	seen := map[blobs.Hash]bool{}
	var out []blobs.Hash
	add := func(h blobs.Hash) {
		if !seen[h] {
			seen[h] = true
			out = append(out, h)
		}
	}
	for _, f := range m.Files {
		if len(f.Chunks) > 0 {
			for _, c := range f.Chunks {
				add(c.Hash)
			}
		} else if !tableOnly || f.RawFrom == "" {
			add(f.Hash)
		}
		for _, v := range f.Variants {
			if !tableOnly || v.Level == 0 {
				add(v.Hash)
			}
		}
	}
	return out
}
