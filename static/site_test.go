package static

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/dt-cdn/dt/blobs"
	"github.com/dt-cdn/dt/internal/testkit/wait"
	"github.com/dt-cdn/dt/site"
	"github.com/go-chi/chi/v5"
)

func spaFiles() map[string]*testFile {
	const html = "text/html; charset=utf-8"
	return map[string]*testFile{
		"/index.html":      {body: htmlPage("app", 400), typ: html},
		"/about.html":      {body: htmlPage("about", 300), typ: html},
		"/docs/index.html": {body: htmlPage("docs", 300), typ: html},
		"/404.html":        {body: htmlPage("404", 100), typ: html},
		"/main.js":         {body: []byte("run()\n"), typ: "text/javascript"},
		"/.svn/entries":    {body: []byte("svn\n"), typ: "text/plain"},
	}
}

func TestSPA(t *testing.T) {
	files := spaFiles()
	d := newDeploy(t, files, func(m *site.Manifest) {
		m.SPA = true
		m.Headers = []site.HeaderRule{{Path: "/app/*", Values: [][2]string{{"X-App", "1"}}}}
	}, SiteOptions{})
	h := NewHandler(HandlerConfig{})
	h.SetSite(d.site)
	srv := startServer(t, h)
	index := files["/index.html"].body
	runConformance(t, overHTTP1(srv), []conformanceCase{
		{name: "client route", target: "/dashboard/settings", status: 200, body: index, hdr: hdrWant{"Etag": etagOf(index), "X-App": ""}},
		{name: "client route with rule headers", target: "/app/x", status: 200, body: index, hdr: hdrWant{"X-App": "1"}},
		{name: "client route trailing slash", target: "/dashboard/", status: 200, body: index},
		{name: "client route conditional", target: "/dashboard", header: []string{"If-None-Match: " + etagOf(index)}, status: 304},
		{name: "missing asset 404", target: "/missing.js", status: 404, body: files["/404.html"].body},
		{name: "existing asset", target: "/main.js", status: 200, body: files["/main.js"].body},
		{name: "no clean URLs", target: "/about.html", status: 200, body: files["/about.html"].body},
		{name: "extensionless falls to SPA", target: "/about", status: 200, body: index},
		{name: "index.html served as named", target: "/docs/index.html", status: 200, body: files["/docs/index.html"].body},
		{name: "dir index", target: "/docs/", status: 200, body: files["/docs/index.html"].body},
		{name: "missing slash", target: "/docs", status: 301, hdr: hdrWant{"Location": "/docs/"}},
		{name: "dot dir never SPA", target: "/.svn/entries", status: 404, body: files["/404.html"].body},
		{name: ".git never SPA", target: "/.git/config", status: 404, body: files["/404.html"].body},
		{name: "dot file never SPA", target: "/.git", status: 404},
	})
}

func TestPlainNotFound(t *testing.T) {
	d := newDeploy(t, map[string]*testFile{"/a.txt": {body: []byte("a"), typ: "text/plain"}}, nil, SiteOptions{})
	h := NewHandler(HandlerConfig{})
	h.SetSite(d.site)
	srv := startServer(t, h)
	runConformance(t, overHTTP1(srv), []conformanceCase{
		{name: "plain 404", target: "/nope", status: 404, body: []byte("404 Not Found\n"),
			hdr: hdrWant{"Content-Type": "text/plain; charset=utf-8", "Cache-Control": "no-store", "Content-Length": "14"}},
		{name: "HEAD plain 404", method: "HEAD", target: "/nope", status: 404, body: []byte{}, hdr: hdrWant{"Content-Length": "14"}},
		{name: "no index", target: "/", status: 404},
		{name: "400", target: "/%2e%2e/a.txt", status: 400, body: []byte("400 Bad Request\n")},
	})
}

func TestNoSite(t *testing.T) {
	srv := startServer(t, NewHandler(HandlerConfig{}))
	runConformance(t, overHTTP1(srv), []conformanceCase{
		{name: "503 before a deploy", target: "/", status: 503, body: []byte("503 Service Unavailable\n")},
	})
}

// recorder is an Observer that keeps what it is told.
type recorder struct {
	mu  sync.Mutex
	got []ResponseInfo
}

func (r *recorder) ObserveResponse(i ResponseInfo) {
	r.mu.Lock()
	r.got = append(r.got, i)
	r.mu.Unlock()
}

func TestObserverAndRoutes(t *testing.T) {
	testStart := time.Now()
	files := mainFiles()
	d := newDeploy(t, files, mainRules, SiteOptions{})
	obs := &recorder{}
	h := NewHandler(HandlerConfig{
		Observer: obs,
		Routes: func(r chi.Router) {
			r.Get("/.well-known/dt/health", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok")) })
		},
	})
	h.SetSite(d.site)
	srv := startServer(t, h)
	if r := do(t, srv, "GET", "/.well-known/dt/health"); r.status != 200 || string(r.body) != "ok" {
		t.Fatalf("node route: %d %q", r.status, r.body)
	}
	gz := files["/style.css"].variants["gzip"]
	// A body sent from a file by sendfile reaches the client before its handler returns and
	// the response is observed: each request waits for its observation, so that the order is
	// the requests'.
	observed := 0
	doObserved := func(method, target string, lines ...string) {
		t.Helper()
		do(t, srv, method, target, lines...)
		observed++
		wait.For(t, 5*time.Second, func() error {
			obs.mu.Lock()
			defer obs.mu.Unlock()
			if len(obs.got) < observed {
				return fmt.Errorf("%s %s: %d responses observed, want %d", method, target, len(obs.got), observed)
			}
			return nil
		})
	}
	doObserved("GET", "/style.css", "Accept-Encoding: gzip")
	doObserved("HEAD", "/about")
	doObserved("GET", "/medium.bin", "Range: bytes=0-99")
	doObserved("GET", "/old")
	doObserved("POST", "/.well-known/dt/health") // the site answers methods node routes lack
	want := []ResponseInfo{
		{Status: 200, Encoding: "gzip", Bytes: int64(len(gz))},
		{Status: 200},
		{Status: 206, Bytes: 100},
		{Status: 301},
		{Status: 405, Bytes: int64(len("405 Method Not Allowed\n"))},
	}
	obs.mu.Lock()
	defer obs.mu.Unlock()
	if len(obs.got) != len(want) {
		t.Fatalf("observed %d responses, want %d: %+v", len(obs.got), len(want), obs.got)
	}
	for i, w := range want {
		g := obs.got[i]
		if g.Duration <= 0 {
			t.Errorf("response %d: duration %v", i, g.Duration)
		}
		if g.End.IsZero() || g.End.Before(testStart) {
			t.Errorf("response %d: end %v, before the test's start %v", i, g.End, testStart)
		}
		g.Duration, g.End = 0, time.Time{}
		if g != w {
			t.Errorf("response %d: %+v, want %+v", i, g, w)
		}
	}
}

func TestNewSiteRejects(t *testing.T) {
	st, err := blobs.Open(t.TempDir(), blobs.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	good := []byte("hello")
	gh := blobs.Sum(good)
	if err := st.PutBytes(gh, good); err != nil {
		t.Fatal(err)
	}
	missing := blobs.Sum([]byte("not stored"))
	manifest := func(files map[string]site.File, headers ...site.HeaderRule) *site.Manifest {
		return &site.Manifest{Version: site.ManifestVersion, Created: testCreated, Files: files, Headers: headers}
	}
	file := func(p string, f site.File) *site.Manifest { return manifest(map[string]site.File{p: f}) }
	ok := site.File{Hash: gh, Size: 5, Type: "text/plain"}
	cases := []struct {
		name string
		m    *site.Manifest
		want error
	}{
		{"relative path", file("a.txt", ok), ErrInvalidManifest},
		{"dot segment", file("/a/../b", ok), ErrInvalidManifest},
		{"empty segment", file("/a//b", ok), ErrInvalidManifest},
		{"trailing slash", file("/a/", ok), ErrInvalidManifest},
		{"backslash", file(`/a\b`, ok), ErrInvalidManifest},
		{"NUL", file("/a\x00b", ok), ErrInvalidManifest},
		{"bad type", file("/a", site.File{Hash: gh, Size: 5, Type: "text/plain\r\nX: y"}), ErrInvalidManifest},
		{"chunks do not add up", file("/a", site.File{Hash: gh, Size: 9, Chunks: []site.Chunk{{Hash: gh, Size: 5}}}), ErrInvalidManifest},
		{"missing blob", file("/a", site.File{Hash: missing, Size: 5, Type: "text/plain"}), ErrMissingBlob},
		{"missing large blob", file("/a", site.File{Hash: missing, Size: 1 << 20, Type: "text/plain"}), ErrMissingBlob},
		{"wrong size", file("/a", site.File{Hash: gh, Size: 4, Type: "text/plain"}), ErrMissingBlob},
		{"missing variant", file("/a", site.File{Hash: gh, Size: 5, Type: "text/plain", Variants: map[string]site.Variant{"gzip": {Hash: missing, Size: 3}}}), ErrMissingBlob},
		{"bad header rule", manifest(map[string]site.File{"/a": ok}, site.HeaderRule{Path: "/*", Values: [][2]string{{"Bad Name", "x"}}}), ErrInvalidManifest},
		{"bad header value", manifest(map[string]site.File{"/a": ok}, site.HeaderRule{Path: "/*", Values: [][2]string{{"X", "a\nb"}}}), ErrInvalidManifest},
		{"no version", &site.Manifest{Created: testCreated, Files: map[string]site.File{"/a": ok}}, ErrInvalidManifest},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := NewSite(site.DeployID{}, c.m, st, SiteOptions{}); !errors.Is(err, c.want) {
				t.Errorf("NewSite: %v, want %v", err, c.want)
			}
		})
	}
}

func TestNewSiteCorruptBlob(t *testing.T) {
	dir := t.TempDir()
	st, err := blobs.Open(dir, blobs.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	b := []byte("original bytes")
	h := blobs.Sum(b)
	if err := st.PutBytes(h, b); err != nil {
		t.Fatal(err)
	}
	// Rot the blob behind the store's back, keeping its size.
	p := filepath.Join(dir, h.String()[:2], h.String()[2:])
	os.Chmod(p, 0o644)
	if err := os.WriteFile(p, []byte("originaX bytes"), 0o644); err != nil {
		t.Fatal(err)
	}
	m := &site.Manifest{Version: site.ManifestVersion, Created: testCreated,
		Files: map[string]site.File{"/a": {Hash: h, Size: int64(len(b)), Type: "text/plain"}}}
	if _, err := NewSite(mustID(t, m), m, st, SiteOptions{}); !errors.Is(err, ErrCorruptBlob) {
		t.Fatalf("NewSite: %v, want ErrCorruptBlob", err)
	}
}

func TestMemoryBudget(t *testing.T) {
	files := map[string]*testFile{
		"/a": {body: randomBytes(1, 1000), typ: "application/octet-stream"},
		"/b": {body: randomBytes(2, 2000), typ: "application/octet-stream"},
		"/c": {body: randomBytes(3, 4000), typ: "application/octet-stream"},
		"/d": {body: randomBytes(4, 100_000), typ: "application/octet-stream"}, // over MaxMemoryFile
		"/e": {body: randomBytes(1, 1000), typ: "application/octet-stream"},    // same bytes as /a
	}
	d := newDeploy(t, files, nil, SiteOptions{MemoryBudget: 3500})
	if got := d.site.MemoryBytes(); got != 3000 {
		t.Errorf("MemoryBytes = %d, want 3000 (the two smallest blobs, /a and /e shared)", got)
	}
	// Every file is served right whether it is in memory or not.
	h := NewHandler(HandlerConfig{})
	h.SetSite(d.site)
	srv := startServer(t, h)
	for p, f := range files {
		if r := do(t, srv, "GET", p); r.status != 200 || !bytes.Equal(r.body, f.body) {
			t.Errorf("%s: status %d, %d bytes", p, r.status, len(r.body))
		}
	}
	// A next deploy shares the bytes it has in common.
	next, err := NewSite(mustID(t, d.m), d.m, d.store, SiteOptions{MemoryBudget: 3500, Previous: d.site})
	if err != nil {
		t.Fatal(err)
	}
	if &next.memory[blobs.Sum(files["/a"].body)][0] != &d.site.memory[blobs.Sum(files["/a"].body)][0] {
		t.Error("next deploy read /a again instead of sharing it")
	}
	none := newDeploy(t, files, nil, SiteOptions{MaxMemoryFile: -1})
	if got := none.site.MemoryBytes(); got != 0 {
		t.Errorf("MaxMemoryFile -1: MemoryBytes = %d", got)
	}
}

func TestFingerprinted(t *testing.T) {
	for name, want := range map[string]bool{
		"app.3f9a2c1b.js":       true,
		"main.8e1a5e2f.css":     true,
		"index-B1x2Y3z4.js":     true,
		"chunk-5f8a9c2d4e.mjs":  true,
		"vendor.abcdef12.js":    true,
		"app.js":                false,
		"jquery-3.7.1.min.js":   false,
		"font-awesome.css":      false,
		"report-20240101.pdf":   false,
		"html5shiv.js":          false,
		"bootstrap-theme.css":   false,
		"3f9a2c1b3f9a2c1b.js":   false, // the name itself, not a fingerprint after it
		"app.deadbeef.js":       false, // all letters: missed, revalidated
		"logo_3f9a2c1b.png":     false,
		"polyfills-legacy12.js": true, // a false positive the rule accepts
		"a.b.c.d.e.f.g.h.12.js": false,
	} {
		if got := isFingerprinted(name); got != want {
			t.Errorf("isFingerprinted(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestCompileRedirects(t *testing.T) {
	got := compileRedirects([]site.Redirect{
		{From: "/a", To: "/b"},                                            // default status 301
		{From: "https://other.example/*", To: "/", Status: 301},           // domain rule: dropped
		{From: "/proxy/*", To: "https://api.example/:splat", Status: 200}, // proxy: dropped
		{From: "/p", To: "//host/x", Status: 200},                         // network-path rewrite: dropped
		{From: "/c", To: "", Status: 302},                                 // no target: dropped
		{From: "/d", To: "/e", Status: 500},                               // not a rule status: dropped
		{From: "/f", To: "/g", Status: 403, Force: true},
	})
	want := []redirectRule{{"/a", "/b", 301, false}, {"/f", "/g", 403, true}}
	if !slices.Equal(got, want) {
		t.Errorf("compileRedirects = %+v, want %+v", got, want)
	}
}

// TestUnderivedVariantLeftOut: a derived variant (site.Variant.Level) that this node could not
// make, so not on disk, does not fail the deploy: the file is served in its other codings. A
// derived variant on disk is served like any other.
func TestUnderivedVariantLeftOut(t *testing.T) {
	body := htmlPage("derived", 4000)
	files := map[string]*testFile{"/index.html": {body: body, typ: "text/html; charset=utf-8", codings: []string{"gzip"}}}
	d := newDeploy(t, files, func(m *site.Manifest) {
		f := m.Files["/index.html"]
		gz := f.Variants["gzip"]
		gz.Level = 6 // derived, and on disk
		f.Variants["gzip"] = gz
		f.Variants["zstd"] = site.Variant{Hash: blobs.Sum([]byte("never made here")), Size: 100, Level: 3}
		m.Files["/index.html"] = f
	}, SiteOptions{})
	h := NewHandler(HandlerConfig{})
	h.SetSite(d.site)
	srv := startServer(t, h)
	r := do(t, srv, "GET", "/", "Accept-Encoding: zstd")
	if r.status != 200 || r.header.Get("Content-Encoding") != "" || !bytes.Equal(r.body, body) {
		t.Errorf("zstd asked: %d, Content-Encoding %q, %d bytes", r.status, r.header.Get("Content-Encoding"), len(r.body))
	}
	r = do(t, srv, "GET", "/", "Accept-Encoding: zstd, gzip;q=0.5")
	if r.status != 200 || r.header.Get("Content-Encoding") != "gzip" || !bytes.Equal(r.body, files["/index.html"].variants["gzip"]) {
		t.Errorf("zstd or gzip asked: %d, Content-Encoding %q", r.status, r.header.Get("Content-Encoding"))
	}
}

// TestSiteSkipsRouter checks that a request the handler sends straight to the site, past the
// router, gets what the router would have given it, for node routes of every kind (a fixed
// path, a parameter, a mounted router) and paths that come near them, and that a middleware on
// the router sends every request through it.
func TestSiteSkipsRouter(t *testing.T) {
	d := newDeploy(t, mainFiles(), mainRules, SiteOptions{})
	text := func(s string) http.HandlerFunc {
		return func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte(s)) }
	}
	routes := func(r chi.Router) {
		r.Get("/.well-known/dt/health", text("health"))
		r.Get("/api/{id}/info", text("info"))
		sub := chi.NewRouter()
		sub.With(func(next http.Handler) http.Handler { return next }).Get("/x", text("sub"))
		r.Mount("/sub", sub)
	}
	tagged := func(r chi.Router) {
		r.Use(func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("X-Middleware", "1")
				next.ServeHTTP(w, r)
			})
		})
		routes(r)
	}
	for _, tc := range []struct {
		name       string
		routes     func(chi.Router)
		wantAlways bool
	}{{"none", nil, false}, {"routes", routes, false}, {"middleware", tagged, true}} {
		t.Run(tc.name, func(t *testing.T) {
			h := NewHandler(HandlerConfig{Routes: tc.routes})
			h.SetSite(d.site)
			if h.muxAlways != tc.wantAlways {
				t.Fatalf("muxAlways = %v, want %v (prefixes %q)", h.muxAlways, tc.wantAlways, h.routePrefixes)
			}
			if !tc.wantAlways && (!h.siteOnly(httptest.NewRequest("GET", "/index.html", nil)) ||
				tc.routes != nil && h.siteOnly(httptest.NewRequest("GET", "/sub/x", nil))) {
				t.Fatalf("siteOnly wrong for /index.html or /sub/x (prefixes %q)", h.routePrefixes)
			}
			for _, target := range []string{"/", "/index.html", "/.well-known/dt/health", "/.well-known/dt/health/",
				"/.well-known/dt/%68ealth", "/.well-known/dt/healthz", "/.well-known/security.txt", "/api/7/info",
				"/api/", "/api", "/sub/x", "/sub", "/sub/y", "/subx", "/old", "/about"} {
				for _, method := range []string{"GET", "HEAD", "POST"} {
					direct, routed := httptest.NewRecorder(), httptest.NewRecorder()
					h.ServeHTTP(direct, httptest.NewRequest(method, target, nil))
					h.mux.ServeHTTP(routed, httptest.NewRequest(method, target, nil))
					if direct.Code != routed.Code || !bytes.Equal(direct.Body.Bytes(), routed.Body.Bytes()) ||
						!maps.EqualFunc(direct.Header(), routed.Header(), slices.Equal) {
						t.Errorf("%s %s: %d %v %q, through the router %d %v %q", method, target,
							direct.Code, direct.Header(), direct.Body, routed.Code, routed.Header(), routed.Body)
					}
				}
			}
		})
	}
}
