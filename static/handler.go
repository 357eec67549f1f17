package static

import (
	"cmp"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/go-chi/chi/v5"

	"github.com/dt-cdn/dt/blobs"
	"github.com/dt-cdn/dt/internal/fdcache"
	"github.com/dt-cdn/dt/site"
)

// Observer is told about every response the site handler writes, for metrics (the edge counts
// them in Prometheus). ObserveResponse is called by many goroutines at once, after the response
// is written, on the request's goroutine: it must be quick and must not block.
type Observer interface {
	ObserveResponse(ResponseInfo)
}

// RequestObserver is an Observer also told the request each response answered and the name of
// its site, for an access log or statistics per site. A Handler whose Observer is a
// RequestObserver calls ObserveRequest instead of ObserveResponse, under the same contract. r
// and its strings may be reused by the server once ObserveRequest returns: copy what is kept.
// name is site.DefaultSite while the handler serves one site on every host (SetSite), and
// empty when no site claimed the host (421).
type RequestObserver interface {
	Observer
	ObserveRequest(r *http.Request, name string, ri ResponseInfo)
}

// ResponseInfo describes one response of the site handler.
type ResponseInfo struct {
	Status   int
	Encoding string // content coding sent: "br", "zstd", "gzip", or "" for none
	// Bytes are the body bytes written (0 for HEAD, 304 and redirects); over package h2,
	// those handed to the connection to send as the client gives window (h2.BodySender),
	// counted when handed over.
	Bytes int64
	// Duration runs from the handler's start to the end of the body, or over package h2 to
	// the body's handing over: the transfer that follows is the connection's.
	Duration time.Duration
	// End is when Duration ended, for an observer that needs the time of the response (an
	// access log line) without reading the clock again.
	End time.Time
}

// HandlerConfig configures a Handler. The zero value serves the site with no logging, metrics
// or extra routes.
type HandlerConfig struct {
	// Logger receives errors reading blobs (at Error) and failed body writes, mostly clients
	// that went away (at Debug). Nil discards.
	Logger *slog.Logger
	// Observer, if set, is called for every response of the site (not of Routes).
	Observer Observer
	// Routes, if set, registers the edge's own routes (health, metrics, ACME challenges) on the
	// router before the site. They take precedence over any path of the site.
	Routes func(r chi.Router)
	// SendTimeout, if positive, is the write deadline set before each step of a body written
	// over net/http's HTTP/2 server (httpserve.Config.StdHTTP2); package h2 applies its own.
	// Give it the SendTimeout of the server that runs the handler. Zero means none.
	SendTimeout time.Duration
	// OpenFiles bounds the blob files kept open between responses, to be sent again without
	// an open, fstat and close each (see package fdcache): blobs are named by their content,
	// so a descriptor stays right across deploys. More saves opens on more files and holds
	// more descriptors, out of the process's limit, and the disk space of blobs removed
	// meanwhile, until they are evicted (or unused for fdcache.DefaultMaxIdleTime). Zero
	// means fdcache.DefaultMaxIdle; negative keeps none open.
	OpenFiles int
	// SendfileMin is the smallest body held in memory that a plain HTTP/1.1 connection of
	// internal/h1 is sent by sendfile(2) from its open blob file rather than by writev(2)
	// from memory; bodies on disk always are. Zero means DefaultSendfileMin; negative sends
	// every body held in memory from memory.
	SendfileMin int64
}

// Handler serves the current deploy (a Site) over HTTP with the semantics of RFC 9110 and RFC
// 9111, as a static web server should:
//
//   - Only paths of the manifest are served, never the filesystem: no directory listing, no
//     symlink, nothing outside the deploy. Dotfiles and dot directories (.git, .env) are never
//     served, even if listed, except under /.well-known/. The request path is the decoded URL
//     path: one with a NUL or other control byte, a backslash, an encoded slash (%2F), invalid
//     UTF-8 or a dot segment ("/a/../b", also as %2e%2e) is refused with 400, so no spelling
//     reaches a file by another name.
//   - Validators: a strong ETag per representation (the quoted SHA-256 of its bytes, so every
//     edge sends the same one) and Last-Modified = the deploy time. Conditional requests
//     (If-Match, If-None-Match, If-Modified-Since, If-Unmodified-Since, If-Range) follow RFC
//     9110 §13.2.2. A rollback moves Last-Modified back in time: a client that revalidates by
//     date alone can then keep a newer copy; the ETag, which browsers send, has no such gap.
//   - Content negotiation over the manifest's precompressed variants (br, zstd, gzip) with
//     q-values (RFC 9110 §12.5.3); Vary: Accept-Encoding on every response for a file that has
//     variants (304, 206, 406, 416 included); 406 if the client refuses the raw content and
//     every variant.
//   - Range requests (single, multipart/byteranges, suffix, If-Range) on the raw content only:
//     a GET with Range gets identity when the client accepts it, since a partial gzip or brotli
//     stream is useless to most clients. A client that refuses identity gets the whole chosen
//     variant (200). Malformed fields are ignored (200); unsatisfiable ones get 416.
//   - A path is answered, in this order: by the first matching _redirects rule (a rule without
//     "!" is skipped when a file answers the path); by a file: the exact path, "/dir/" for
//     /dir/index.html, and with clean URLs "/about" for /about.html, while "/dir" and (with clean
//     URLs) "/about.html" and "/dir/index.html" redirect (301, query kept) to those; by the SPA
//     fallback (/index.html, 200) for a path whose last segment has no dot; else by the nearest
//     404.html up the directories, with 404, or a plain 404. Rule statuses: 200 rewrites to the
//     target's file (one level), 301/302/303/307/308 redirect (captures substituted
//     percent-encoded; the request's query appended when the target has none; a target that is
//     a path never becomes "//host"), 4xx serves the target's file or the nearest 404.html with
//     that status.
//   - _headers rules matching the request path are applied after the defaults and override
//     them, except the fields the edge owns (ETag, Last-Modified, Vary, Content-Length,
//     Content-Encoding, hop-by-hop fields, X-Content-Type-Options). Cache-Control defaults:
//     "public, max-age=31536000, immutable" for fingerprinted names ("app.3f9a2c1b.js"), else
//     "public, max-age=0, must-revalidate" (see defaultCacheControl for why).
//   - GET and HEAD (HEAD sends exactly the headers of GET, also for errors); OPTIONS gets 204
//     with Allow; other methods 405 with Allow. X-Content-Type-Options: nosniff on every
//     response.
//
// Security limits: the handler trusts the manifest's content types and header rules (they are
// signed by a master) and serves what the blob source holds without re-hashing on each request
// (NewSite verified the bytes it keeps in memory; larger blobs were verified when stored).
// Error responses are plain text naming the status only; internal errors are logged, never
// sent. The handler sets no timeouts: the http.Server does (see Server).
//
// A Handler is safe for concurrent use. Each request reads the current Site once, so a switch
// never gives one response headers or bytes from two deploys; requests in flight finish on the
// Site they started with.
type Handler struct {
	cfg   HandlerConfig
	log   *slog.Logger
	site  atomic.Pointer[Site]
	sites atomic.Pointer[Sites] // when set, the sites picked by Host instead of site
	mux   *chi.Mux
	// routePrefixes are the literal starts of the node routes' patterns, and muxAlways is
	// set when every request must go through mux (a middleware wraps the site too): see
	// siteOnly.
	routePrefixes []string
	muxAlways     bool
	bufs          sync.Pool // *[]byte of copyBufSize, for bodies read from blob files
	// files are the blob files kept open for sendfile (HandlerConfig.OpenFiles).
	files       *fdcache.Cache[blobs.Hash]
	sendfileMin int64 // HandlerConfig.SendfileMin with its default; negative for none

	// Shared header values (len == cap; see field).
	vNosniff, vAllow, vAcceptRanges, vVary, vTextPlain, vNoStore []string
	errors                                                       map[int]errorResponse
}

type errorResponse struct {
	body []byte
	lenH []string
}

func newErrorResponse(status int) errorResponse {
	text := http.StatusText(status)
	if text == "" {
		text = "Error"
	}
	body := strconv.Itoa(status) + " " + text + "\n"
	return errorResponse{[]byte(body), []string{strconv.Itoa(len(body))}}
}

var _ http.Handler = (*Handler)(nil)

// copyBufSize is the copy buffer for blob files when the connection cannot sendfile (TLS,
// HTTP/2): a whole TLS record's worth of plaintext and then some.
const copyBufSize = 64 << 10

// NewHandler returns a Handler with no site: it answers 503 until SetSite.
func NewHandler(cfg HandlerConfig) *Handler {
	h := &Handler{
		cfg:           cfg,
		log:           cfg.Logger,
		vNosniff:      []string{"nosniff"},
		vAllow:        []string{"GET, HEAD, OPTIONS"},
		vAcceptRanges: []string{"bytes"},
		vVary:         []string{hAcceptEncoding},
		vTextPlain:    []string{"text/plain; charset=utf-8"},
		vNoStore:      []string{"no-store"},
		errors:        map[int]errorResponse{},
		files:         fdcache.New[blobs.Hash](fdcache.Config{MaxIdle: cfg.OpenFiles}),
		sendfileMin:   cmp.Or(cfg.SendfileMin, DefaultSendfileMin),
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	h.bufs.New = func() any { b := make([]byte, copyBufSize); return &b }
	for _, status := range []int{400, 404, 405, 406, 410, 412, 416, 421, 451, 500, 503} {
		h.errors[status] = newErrorResponse(status)
	}
	h.mux = h.routes()
	h.routePrefixes, h.muxAlways = routePrefixes(h.mux)
	return h
}

// routes registers every route of the handler. The node's own routes (HandlerConfig.Routes:
// health at /.well-known/dt/health, ACME challenges) come first; the site is the router's
// NotFound and MethodNotAllowed handler, so it answers every path and method no node route
// claims. (A "/*" route would do the same but cost a route-parameter map and a pattern string
// per request.)
func (h *Handler) routes() *chi.Mux {
	r := chi.NewRouter()
	if h.cfg.Routes != nil {
		h.cfg.Routes(r)
	}
	r.NotFound(h.serveSite)
	r.MethodNotAllowed(h.serveSite)
	return r
}

// ServeHTTP serves a request: a node route if one matches, else the current site.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.siteOnly(r) {
		h.serveSite(w, r)
		return
	}
	h.mux.ServeHTTP(w, r)
}

// siteOnly reports whether r goes to the site whatever the router would do with it: no node
// route's pattern can match its path, and no middleware wraps the site. Such a request skips
// the router, which would give it a routing context (a context value and a copy of the
// request, two allocations) and walk its tree only to end at the site.
func (h *Handler) siteOnly(r *http.Request) bool {
	if h.muxAlways {
		return false
	}
	// The path chi routes by (Mux.routeHTTP).
	p := cmp.Or(r.URL.RawPath, r.URL.Path, "/")
	for _, prefix := range h.routePrefixes {
		if strings.HasPrefix(p, prefix) {
			return false
		}
	}
	return true
}

// routePrefixes returns the literal start of every route pattern of mux (up to its first
// parameter or wildcard: a path without one of them as its prefix matches no route), and
// reports whether mux must see every request anyway because middlewares wrap its not-found
// handler, or its routes could not be listed.
func routePrefixes(mux *chi.Mux) (prefixes []string, always bool) {
	if len(mux.Middlewares()) > 0 {
		return nil, true
	}
	err := chi.Walk(mux, func(_, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		if i := strings.IndexAny(route, "{*"); i >= 0 {
			route = route[:i]
		}
		if !slices.Contains(prefixes, route) {
			prefixes = append(prefixes, route)
		}
		return nil
	})
	return prefixes, err != nil
}

// OpenFiles returns the counts of the blob files kept open (HandlerConfig.OpenFiles), for
// metrics.
func (h *Handler) OpenFiles() *fdcache.Stats { return h.files.Stats() }

// Close closes the blob files kept open; those sending a response close when it is sent. The
// handler still serves afterwards, opening each blob per response. It is safe to call more
// than once.
func (h *Handler) Close() error { return h.files.Close() }

// SetSite makes s the site served from now on. Requests in flight finish with the site they
// started with. A nil s makes the handler answer 503.
func (h *Handler) SetSite(s *Site) { h.site.Store(s) }

// Site returns the site being served, or nil.
func (h *Handler) Site() *Site { return h.site.Load() }

// SetSites makes the handler serve many sites, each on its hosts, from now on: a request gets the
// site Sites.Pick chooses, 421 Misdirected Request (with no content of any site) when no site
// claims it, and 503 while its site has no deploy. Requests in flight finish with the site they
// started with. A nil ss returns the handler to the one site of SetSite, on every host.
func (h *Handler) SetSites(ss *Sites) { h.sites.Store(ss) }

// Sites returns the sites being served, or nil when the handler serves one site on every host.
func (h *Handler) Sites() *Sites { return h.sites.Load() }

// pick returns the name of the site of r and the Site that answers it, or the status of the
// error that does.
func (h *Handler) pick(r *http.Request) (name string, s *Site, status int) {
	ss := h.sites.Load()
	if ss == nil {
		if s := h.site.Load(); s != nil {
			return site.DefaultSite, s, 0
		}
		return site.DefaultSite, nil, http.StatusServiceUnavailable
	}
	name, s, claimed, preview := ss.PickDeploy(r)
	switch {
	case !claimed:
		return "", nil, http.StatusMisdirectedRequest
	case s == nil:
		return name, nil, http.StatusServiceUnavailable
	case preview != "" && !strings.HasPrefix(s.ID().String(), preview):
		return name, nil, statusNoPreview
	}
	return name, s, 0
}

// statusNoPreview is pick's status for a preview name of a deploy other than the site's
// current one: an edge holds each site's current deploy only, so it answers 404 with
// previewMissing.
const statusNoPreview = -http.StatusNotFound

// previewMissing is the body of statusNoPreview's 404.
var previewMissing = errorResponse{
	body: []byte(previewMissingText),
	lenH: []string{strconv.Itoa(len(previewMissingText))},
}

const previewMissingText = "404 Not Found: this edge serves only the site's current deploy; the preview of another deploy is not held here\n"

// outcome is what a response was, for the Observer.
type outcome struct {
	site   string
	status int
	coding coding
	bytes  int64
}

func (h *Handler) serveSite(w http.ResponseWriter, r *http.Request) {
	if h.cfg.Observer == nil {
		h.serve(w, r)
		return
	}
	start := time.Now()
	o := h.serve(w, r)
	// time.Since reads only the monotonic clock, where a second time.Now would read the wall
	// clock too: the end is the start moved by it.
	d := time.Since(start)
	ri := ResponseInfo{
		Status:   o.status,
		Encoding: o.coding.String(),
		Bytes:    o.bytes,
		Duration: d,
		End:      start.Add(d),
	}
	if ro, ok := h.cfg.Observer.(RequestObserver); ok {
		ro.ObserveRequest(r, o.site, ri)
		return
	}
	h.cfg.Observer.ObserveResponse(ri)
}

// serve answers one request from the current site.
func (h *Handler) serve(w http.ResponseWriter, r *http.Request) outcome {
	name, s, status := h.pick(r) // once: the whole response comes from this deploy
	o := h.serveFrom(w, r, s, status)
	o.site = name
	return o
}

// serveFrom answers one request from s, or with the error status pick chose.
//
// Every response carries X-Content-Type-Options: nosniff, set by what writes its status
// (writeError, redirect, setFileHeaders, …) rather than here at once, so that a response whose
// fields all go in a header block leaves the header map empty: an empty map is never grown,
// and package h1 then has nothing in it to write or look up.
func (h *Handler) serveFrom(w http.ResponseWriter, r *http.Request, s *Site, status int) outcome {
	if status == http.StatusMisdirectedRequest {
		return h.writeError(w, r, status, nil) // not even OPTIONS: no site answers here
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
	case http.MethodOptions:
		hdr := w.Header()
		hdr[hNosniff] = h.vNosniff
		hdr[hAllow] = h.vAllow
		w.WriteHeader(http.StatusNoContent)
		return outcome{status: http.StatusNoContent}
	default:
		w.Header()[hAllow] = h.vAllow
		return h.writeError(w, r, http.StatusMethodNotAllowed, nil)
	}
	if status == statusNoPreview {
		return h.writePreviewMissing(w, r)
	}
	if s == nil {
		return h.writeError(w, r, status, nil)
	}
	p, hidden, ok := requestPath(r.URL)
	if !ok {
		return h.writeError(w, r, http.StatusBadRequest, nil)
	}
	if rt := s.routes[p]; rt != nil && !rt.slow && !hidden {
		if rt.location != "" {
			loc := rt.location
			if r.URL.RawQuery != "" {
				loc += "?" + r.URL.RawQuery
			}
			return h.redirect(w, http.StatusMovedPermanently, loc)
		}
		return h.serveFile(w, r, s, rt.file, rt.headers, rt.blocks, http.StatusOK)
	}
	a := s.resolve(p, r.URL.RawQuery, hidden)
	switch {
	case a.location != "":
		return h.redirect(w, a.status, a.location)
	case a.file != nil:
		return h.serveFile(w, r, s, a.file, a.headers, a.file.blocksFor(a.headers), a.status)
	}
	return h.writeError(w, r, a.status, nil)
}

// requestPath checks the decoded request path and reports whether it is hidden (has a segment
// starting with a dot, other than a leading /.well-known). ok is false for a path no manifest
// path could be spelled as: not absolute, a control byte or backslash (which some clients and
// filesystems treat as a slash), an encoded slash inside a segment, a dot segment, invalid
// UTF-8. It does not allocate.
func requestPath(u *url.URL) (p string, hidden, ok bool) {
	p = u.Path
	if p == "" {
		p = "/" // absolute-form request target without a path (RFC 9112 §3.2.2)
	}
	if p[0] != '/' || u.RawPath != "" && hasEncodedSlash(u.RawPath) {
		return "", false, false
	}
	ascii := true
	for i := 1; i < len(p); i++ {
		c := p[i]
		switch {
		case c < 0x20 || c == 0x7f || c == '\\':
			return "", false, false
		case c >= 0x80:
			ascii = false
		case c == '.' && p[i-1] == '/':
			j := i + 1
			for j < len(p) && p[j] != '/' {
				j++
			}
			if j == i+1 || j == i+2 && p[i+1] == '.' {
				return "", false, false // "." or ".." (RFC 3986 §5.2.4 would remove it)
			}
			if i != 1 || p[1:j] != ".well-known" {
				hidden = true
			}
		}
	}
	if !ascii && !utf8.ValidString(p) {
		return "", false, false
	}
	return p, hidden, true
}

func hasEncodedSlash(raw string) bool {
	for i := 0; i+2 < len(raw); i++ {
		if raw[i] == '%' && raw[i+1] == '2' && raw[i+2]|0x20 == 'f' {
			return true
		}
	}
	return false
}

// redirect answers with a redirect status and Location, and no body.
func (h *Handler) redirect(w http.ResponseWriter, status int, location string) outcome {
	hdr := w.Header()
	hdr[hNosniff] = h.vNosniff
	hdr[hLocation] = []string{location}
	w.WriteHeader(status)
	return outcome{status: status}
}

// writeError writes every error response: a plain-text body naming the status, never a
// detail of the failure (internal errors are logged by the caller). f, if set, is the file the
// request was for: its Vary is kept, since the error depended on Accept-Encoding or on a
// representation chosen by it.
func (h *Handler) writeError(w http.ResponseWriter, r *http.Request, status int, f *file) outcome {
	e := h.errorFor(status)
	hdr := w.Header()
	hdr[hNosniff] = h.vNosniff
	hdr[hContentType] = h.vTextPlain
	hdr[hContentLength] = e.lenH
	hdr[hCacheControl] = h.vNoStore
	if f != nil && f.vary {
		hdr[hVary] = h.vVary
	}
	w.WriteHeader(status)
	if r.Method == http.MethodHead {
		return outcome{status: status}
	}
	n, _ := w.Write(e.body) // a client that went away is not an error here
	return outcome{status: status, bytes: int64(n)}
}

// writePreviewMissing writes the 404 of statusNoPreview, as writeError writes others.
func (h *Handler) writePreviewMissing(w http.ResponseWriter, r *http.Request) outcome {
	hdr := w.Header()
	hdr[hNosniff] = h.vNosniff
	hdr[hContentType] = h.vTextPlain
	hdr[hContentLength] = previewMissing.lenH
	hdr[hCacheControl] = h.vNoStore
	w.WriteHeader(http.StatusNotFound)
	if r.Method == http.MethodHead {
		return outcome{status: http.StatusNotFound}
	}
	n, _ := w.Write(previewMissing.body)
	return outcome{status: http.StatusNotFound, bytes: int64(n)}
}

// errorFor returns the response of an error status. The common ones are made once by
// NewHandler (the map is never written after that); others, which only _redirects rules produce
// (403, say), are made per request.
func (h *Handler) errorFor(status int) errorResponse {
	if e, ok := h.errors[status]; ok {
		return e
	}
	return newErrorResponse(status)
}
