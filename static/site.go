package static

import (
	"cmp"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/dt-cdn/dt/blobs"
	"github.com/dt-cdn/dt/site"
)

// BlobSource is where a Site reads file bytes; *blobs.Store satisfies it. Open returns a new file
// positioned at offset 0, which the caller closes. It is called from many goroutines at once.
type BlobSource interface {
	Open(h blobs.Hash) (*os.File, error)
}

var _ BlobSource = (*blobs.Store)(nil)

// Defaults of SiteOptions.
const (
	// DefaultMaxMemoryFile is the largest representation held in memory: above it, a response
	// is streamed from its blob file (sendfile(2) on plain HTTP), which costs little next to
	// the transfer itself.
	DefaultMaxMemoryFile = 64 << 10
	// DefaultMemoryBudget bounds the bytes one Site holds in memory. Two Sites are alive while
	// a switch is under way, so an edge uses up to twice this.
	DefaultMemoryBudget = 64 << 20
)

// SiteOptions tune NewSite. The zero value uses the defaults.
type SiteOptions struct {
	// MaxMemoryFile: representations (raw content or a precompressed variant) of at most this
	// many bytes are read into memory by NewSite, so that serving them makes no system call but
	// the socket write. Zero means DefaultMaxMemoryFile; negative keeps nothing in memory.
	MaxMemoryFile int64
	// MemoryBudget bounds the bytes held in memory. When the small representations add up to
	// more, the smallest are kept (the most files per byte). Zero means DefaultMemoryBudget.
	MemoryBudget int64
	// Previous, if set, is the Site being replaced: blobs it holds in memory are shared instead
	// of read again, so a deploy that changes a few files loads only those.
	Previous *Site
}

// Site is one deploy as the handler serves it: an immutable snapshot of the manifest, the blob
// source, and every response header that does not depend on the request, computed once by
// NewSite. A Handler serves exactly one Site at a time and switches atomically (Handler.SetSite),
// so a response never mixes two deploys. A Site is safe for concurrent use.
type Site struct {
	id       site.DeployID
	manifest *site.Manifest
	src      BlobSource

	// routes maps every path that serves a file directly (exact file, directory index, clean
	// URL) or redirects canonically (missing slash, .html under clean URLs) to its answer.
	routes map[string]*route
	// notFound maps a directory ("" for the root, "/docs", "/docs/api") to its 404.html.
	notFound map[string]*file
	// index is /index.html, the SPA fallback; nil if the deploy has none.
	index *file

	redirects   []redirectRule
	headerRules []headerRule

	lastModified []string // Last-Modified value; nil when the manifest has no creation time
	modTime      int64    // manifest.Created in Unix seconds; meaningful when lastModified != nil

	memory   map[blobs.Hash][]byte // representations held in memory, by blob hash
	memBytes int64
}

// file is one manifest file with its representations.
type file struct {
	path string
	// reps[identity] is the raw content; the others are the precompressed variants the
	// manifest lists, nil where it has none.
	reps [numCodings]*rep
	// headers are the response headers when no _headers rule applies, built from defaults.
	headers  *headerSet
	defaults defaultsKey
	vary     bool // there are variants: every response for this file carries Vary
	// blocks are the header blocks of its 200 responses under headers.
	blocks repBlocks
}

// rep is one representation of a file: the raw content or one precompressed variant.
type rep struct {
	coding coding
	hash   blobs.Hash // of these bytes (the whole raw content, or the variant)
	etag   string     // strong entity-tag: the quoted hex hash of these bytes (RFC 9110 §8.8.3)
	etagH  []string   // the ETag field value, ready to put in a header map
	encH   []string   // the Content-Encoding field value; nil for identity
	size   int64
	lenH   []string // the Content-Length field value
	data   []byte   // the bytes, if held in memory; else read from parts
	parts  []part   // blobs holding the bytes, in order
	// derived is a variant each node makes itself (site.Variant.Level): one this node could not
	// make is left out rather than failing the deploy.
	derived bool
}

type part struct {
	hash blobs.Hash
	size int64
}

// route is the answer for one path that needs no _redirects rule.
type route struct {
	// file is what the path serves; for a canonical redirect, the file it leads to (a rewrite
	// to the path serves it without redirecting).
	file    *file
	headers *headerSet
	// blocks are the header blocks of file's 200 responses under headers: file's own when
	// headers are its defaults, else the route's.
	blocks *repBlocks
	// location, when set, makes the route a 301 redirect to this escaped path.
	location string
	// slow is set when a _redirects rule matches the path: the request goes through the rules
	// (a forced rule for a file, any rule for a redirect route), not straight to file.
	slow bool
}

// NewSite builds the Site of a deploy: it validates the manifest (site.Manifest.Validate),
// checks that src holds every blob the deploy needs with the right size, reads small
// representations into memory (verifying their hashes) and computes the response headers of
// every path. id is the deploy's id (m.ID(), which the caller has from the table); it names the
// deploy in logs and to callers. m must not be modified afterwards.
//
// Files whose path has a segment starting with a dot (other than a leading /.well-known, RFC
// 8615) are never served, even if listed. _redirects rules whose source is not a path (a
// domain rule), whose status is not one of 200, 301, 302, 303, 307, 308 or 4xx, or that
// rewrite (200) to an absolute URL (a proxy rule) are ignored: the edge does not proxy.
func NewSite(id site.DeployID, m *site.Manifest, src BlobSource, opts SiteOptions) (*Site, error) {
	if m == nil || src == nil {
		return nil, fmt.Errorf("%w: nil manifest or blob source", ErrInvalidManifest)
	}
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidManifest, err)
	}
	if opts.MaxMemoryFile == 0 {
		opts.MaxMemoryFile = DefaultMaxMemoryFile
	}
	if opts.MemoryBudget == 0 {
		opts.MemoryBudget = DefaultMemoryBudget
	}
	s := &Site{
		id:       id,
		manifest: m,
		src:      src,
		routes:   make(map[string]*route, len(m.Files)*5/4),
		notFound: map[string]*file{},
		memory:   map[blobs.Hash][]byte{},
	}
	if !m.Created.IsZero() {
		s.lastModified = []string{m.Created.UTC().Format(http.TimeFormat)}
		s.modTime = m.Created.Unix()
	}
	var err error
	if s.headerRules, err = compileHeaderRules(m.Headers); err != nil {
		return nil, err
	}
	s.redirects = compileRedirects(m.Redirects)

	paths := make([]string, 0, len(m.Files))
	for p := range m.Files {
		paths = append(paths, p)
	}
	slices.Sort(paths) // deterministic memory selection and route priority
	files := make(map[string]*file, len(paths))
	defaults := map[defaultsKey]*headerSet{}
	for _, p := range paths {
		if hiddenPath(p) {
			continue
		}
		f, err := newFile(p, m.Files[p], defaults)
		if err != nil {
			return nil, err
		}
		files[p] = f
	}
	s.dropUnderived(files, opts.Previous)
	if err := s.loadBlobs(files, paths, opts); err != nil {
		return nil, err
	}
	s.buildRoutes(files, paths, m.CleanURLs)
	if m.SPA {
		s.index = files["/index.html"]
	}
	return s, nil
}

// ID returns the deploy id given to NewSite.
func (s *Site) ID() site.DeployID { return s.id }

// Manifest returns the deploy's manifest. It must not be modified.
func (s *Site) Manifest() *site.Manifest { return s.manifest }

// MemoryBytes returns how many bytes of file data the Site holds in memory (shared with the
// Previous site where it reused them).
func (s *Site) MemoryBytes() int64 { return s.memBytes }

// hiddenPath reports whether a path has a segment starting with a dot (a dotfile or a file in
// a dot directory: .git, .env, .htpasswd), which the edge never serves whatever the manifest
// says. The one exception is a leading /.well-known/ (RFC 8615), which sites need for
// security.txt and similar.
func hiddenPath(p string) bool {
	if strings.HasPrefix(p, "/.well-known/") {
		p = p[len("/.well-known"):]
	}
	return strings.Contains(p, "/.")
}

// newFile checks one manifest entry and precomputes its representations' header values.
func newFile(p string, mf site.File, defaults map[defaultsKey]*headerSet) (*file, error) {
	bad := func(why string) error {
		return fmt.Errorf("%w: file %q: %s", ErrInvalidManifest, p, why)
	}
	if mf.Size < 0 {
		return nil, bad("negative size")
	}
	ctype := mf.Type
	if ctype == "" {
		ctype = "application/octet-stream"
	}
	if !validFieldValue(ctype) {
		return nil, bad("content type is not a valid header value")
	}
	f := &file{path: p}
	id := &rep{coding: identity, size: mf.Size}
	if len(mf.Chunks) == 0 {
		id.parts = []part{{mf.Hash, mf.Size}}
	} else {
		var sum int64
		for _, c := range mf.Chunks {
			if c.Size <= 0 {
				return nil, bad("empty or negative chunk")
			}
			sum += c.Size
			id.parts = append(id.parts, part{c.Hash, c.Size})
		}
		if sum != mf.Size {
			return nil, bad("chunk sizes do not add up to the file size")
		}
	}
	setRepHeaders(id, mf.Hash)
	f.reps[identity] = id
	for name, v := range mf.Variants {
		c, ok := parseCoding(name)
		if !ok || c == identity {
			continue // a coding this edge cannot label; the raw content still serves
		}
		if v.Size < 0 {
			return nil, bad("negative variant size")
		}
		r := &rep{coding: c, size: v.Size, parts: []part{{v.Hash, v.Size}}, derived: v.Level != 0}
		setRepHeaders(r, v.Hash)
		r.encH = []string{c.String()}
		f.reps[c] = r
		f.vary = true
	}
	f.defaults = defaultsKey{ctype, defaultCacheControl(p, ctype), f.vary}
	if f.headers = defaults[f.defaults]; f.headers == nil {
		f.headers = newHeaderSet(f.defaults, nil, nil)
		defaults[f.defaults] = f.headers
	}
	return f, nil
}

func setRepHeaders(r *rep, h blobs.Hash) {
	r.hash = h
	r.etag = `"` + h.String() + `"`
	r.etagH = []string{r.etag}
	r.lenH = []string{strconv.FormatInt(r.size, 10)}
}

// dropUnderived leaves out the derived variants that are not on disk: made with another encoder
// version, their bytes did not match the manifest, so this node serves the file's other codings.
// Those the previous Site holds in memory were read and verified then: they need no look.
func (s *Site) dropUnderived(files map[string]*file, prev *Site) {
	for _, f := range files {
		if f == nil {
			continue
		}
		for c, r := range f.reps {
			if r == nil || !r.derived || (prev != nil && prev.memory[r.hash] != nil) {
				continue
			}
			if s.checkBlob(r.parts[0]) != nil {
				f.reps[c] = nil
			}
		}
	}
}

// loadBlobs checks that every blob of the deploy is present with its size and reads the small
// representations into memory, smallest first, within the budget.
func (s *Site) loadBlobs(files map[string]*file, paths []string, opts SiteOptions) error {
	type candidate struct {
		hash blobs.Hash // of the whole representation
		rep  *rep
	}
	var small []candidate
	seenSmall := map[blobs.Hash]bool{}
	checked := map[blobs.Hash]bool{}
	for _, p := range paths {
		f := files[p]
		if f == nil {
			continue
		}
		for _, r := range f.reps {
			if r == nil {
				continue
			}
			h := r.hash
			if r.size <= opts.MaxMemoryFile {
				if !seenSmall[h] {
					seenSmall[h] = true
					small = append(small, candidate{h, r})
				}
				continue
			}
			for _, pt := range r.parts {
				if checked[pt.hash] {
					continue
				}
				checked[pt.hash] = true
				if err := s.checkBlob(pt); err != nil {
					return fmt.Errorf("file %q: %w", p, err)
				}
			}
		}
	}
	slices.SortFunc(small, func(a, b candidate) int {
		return cmp.Or(cmp.Compare(a.rep.size, b.rep.size), slices.Compare(a.hash[:], b.hash[:]))
	})
	var prev map[blobs.Hash][]byte
	if opts.Previous != nil {
		prev = opts.Previous.memory
	}
	for _, c := range small {
		if s.memBytes+c.rep.size > opts.MemoryBudget {
			// Too big for what is left: check it is there and leave it on disk.
			for _, pt := range c.rep.parts {
				if err := s.checkBlob(pt); err != nil {
					return err
				}
			}
			continue
		}
		b, ok := prev[c.hash]
		if !ok {
			var err error
			if b, err = s.readRep(c.hash, c.rep); err != nil {
				return err
			}
		}
		s.memory[c.hash] = b
		s.memBytes += int64(len(b))
	}
	for _, f := range files {
		for _, r := range f.reps {
			if r != nil {
				r.data = s.memory[r.hash]
			}
		}
	}
	return nil
}

// checkBlob opens a blob and compares its size with the manifest's.
func (s *Site) checkBlob(pt part) error {
	f, err := s.src.Open(pt.hash)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrMissingBlob, pt.hash.Short(), err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("static: stat blob %s: %w", pt.hash.Short(), err)
	}
	if fi.Size() != pt.size {
		return fmt.Errorf("%w: %s holds %d bytes, manifest says %d", ErrMissingBlob, pt.hash.Short(), fi.Size(), pt.size)
	}
	return nil
}

// readRep reads a representation's parts into one slice and verifies the whole against its
// hash, so bytes served from memory are known to be right.
func (s *Site) readRep(h blobs.Hash, r *rep) ([]byte, error) {
	b := make([]byte, 0, r.size)
	for _, pt := range r.parts {
		if err := s.checkBlob(pt); err != nil {
			return nil, err
		}
		f, err := s.src.Open(pt.hash)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrMissingBlob, pt.hash.Short(), err)
		}
		n := len(b)
		b = b[:n+int(pt.size)]
		_, err = io.ReadFull(f, b[n:])
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("static: read blob %s: %w", pt.hash.Short(), err)
		}
	}
	if blobs.Sum(b) != h {
		return nil, fmt.Errorf("%w: %s", ErrCorruptBlob, h.Short())
	}
	return b, nil
}

// buildRoutes fills s.routes and s.notFound. Priority, highest first: a file at the exact path;
// a directory's index.html at "/dir/"; under clean URLs, "/about" for /about.html; then the
// canonical redirects ("/dir" to "/dir/"; under clean URLs "/about.html" to "/about" and
// "/dir/index.html" to "/dir/"). A path never gets two answers.
func (s *Site) buildRoutes(files map[string]*file, paths []string, cleanURLs bool) {
	serve := func(p string, f *file) {
		if s.routes[p] == nil {
			s.routes[p] = &route{file: f}
		}
	}
	redirect := func(p, to string, f *file) {
		if s.routes[p] == nil {
			s.routes[p] = &route{file: f, location: (&url.URL{Path: to}).EscapedPath()}
		}
	}
	canonical := func(p string) string { // the URL an .html file is served at under clean URLs
		if dir, ok := strings.CutSuffix(p, "/index.html"); ok {
			return dir + "/"
		}
		return strings.TrimSuffix(p, ".html")
	}
	isHTMLName := func(p string) bool { return cleanURLs && strings.HasSuffix(p, ".html") }
	for _, p := range paths { // exact files
		if f := files[p]; f != nil && !isHTMLName(p) {
			serve(p, f)
		}
	}
	for _, p := range paths { // directory indexes and clean URLs
		f := files[p]
		switch {
		case f == nil:
		case isHTMLName(p):
			serve(canonical(p), f)
		case strings.HasSuffix(p, "/index.html"):
			serve(strings.TrimSuffix(p, "index.html"), f)
		}
	}
	for _, p := range paths { // canonical redirects
		f := files[p]
		if f == nil {
			continue
		}
		if isHTMLName(p) {
			if c := canonical(p); s.routes[c] != nil && s.routes[c].file == f {
				redirect(p, c, f)
			} else {
				serve(p, f) // the clean URL belongs to another file: serve this one as named
			}
		}
		if dir, ok := strings.CutSuffix(p, "/index.html"); ok && dir != "" {
			if r := s.routes[dir+"/"]; r != nil && r.file == f {
				redirect(dir, dir+"/", f)
			}
		}
		if dir, ok := strings.CutSuffix(p, "/404.html"); ok {
			s.notFound[dir] = f
		}
	}
	interned := map[string]*headerSet{}
	for p, r := range s.routes {
		if r.location != "" {
			r.slow = s.anyRuleMatches(p, false)
			continue
		}
		r.slow = s.anyRuleMatches(p, true)
		r.headers = s.headersFor(r.file, p, interned)
		if r.blocks = r.file.blocksFor(r.headers); r.blocks == nil {
			r.blocks = new(repBlocks)
		}
	}
}
