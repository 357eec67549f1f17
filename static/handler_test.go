package static

import (
	"bytes"
	"cmp"
	"compress/gzip"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/dt-cdn/dt/site"
)

// mainFiles is the deploy most conformance cases run against (with CleanURLs and rules).
func mainFiles() map[string]*testFile {
	const html = "text/html; charset=utf-8"
	return map[string]*testFile{
		"/index.html":                  {body: htmlPage("home", 1024), typ: html, codings: []string{"gzip", "br"}},
		"/about.html":                  {body: htmlPage("about", 300), typ: html},
		"/docs/index.html":             {body: htmlPage("docs", 500), typ: html},
		"/docs/guide.html":             {body: htmlPage("guide", 700), typ: html},
		"/docs/404.html":               {body: htmlPage("docs-404", 200), typ: html, codings: []string{"gzip"}},
		"/404.html":                    {body: htmlPage("root-404", 200), typ: html},
		"/style.css":                   {body: bytes.Repeat([]byte("body{color:#123}\n"), 200), typ: "text/css; charset=utf-8", codings: []string{"gzip", "br", "zstd"}},
		"/app.3f9a2c1b.js":             {body: bytes.Repeat([]byte("console.log(1);\n"), 100), typ: "text/javascript; charset=utf-8", codings: []string{"gzip"}},
		"/medium.bin":                  {body: randomBytes(1, 200_000), typ: "application/octet-stream"},
		"/big.bin":                     {body: randomBytes(2, 300_000), typ: "application/octet-stream", chunkAt: []int{100_000, 170_000}},
		"/empty.txt":                   {body: nil, typ: "text/plain; charset=utf-8"},
		"/forced.txt":                  {body: []byte("forced original\n"), typ: "text/plain; charset=utf-8"},
		"/shadowed.txt":                {body: []byte("shadowed original\n"), typ: "text/plain; charset=utf-8"},
		"/.env":                        {body: []byte("SECRET=1\n"), typ: "text/plain"},
		"/.svn/entries":                {body: []byte("svn\n"), typ: "text/plain"},
		"/.well-known/security.txt":    {body: []byte("Contact: mailto:security@example.com\n"), typ: "text/plain; charset=utf-8"},
		"/dir/.hidden/x.txt":           {body: []byte("hidden\n"), typ: "text/plain"},
		"/posts/2024/hello/index.html": {body: htmlPage("post", 100), typ: html},
	}
}

func mainRules(m *site.Manifest) {
	m.CleanURLs = true
	m.Redirects = []site.Redirect{
		{From: "/old", To: "/about", Status: 301},
		{From: "/blog/:year/:slug", To: "/posts/:year/:slug/", Status: 302},
		{From: "/go/*", To: "/:splat", Status: 302},
		{From: "/ext/*", To: "https://example.com/:splat", Status: 301},
		{From: "/app/*", To: "/index.html", Status: 200},
		{From: "/removed", To: "/404.html", Status: 410},
		{From: "/docs/old", To: "/nothing", Status: 404},
		{From: "/forced.txt", To: "/index.html", Status: 200, Force: true},
		{From: "/shadowed.txt", To: "/index.html", Status: 200},
		{From: "/q", To: "/docs/?x=1", Status: 301},
		{From: "/search", To: "/docs/", Status: 302},
		{From: "/legal", To: "/missing", Status: 451},
		{From: "/docs", To: "/about", Status: 302}, // beats the canonical redirect
	}
	m.Headers = []site.HeaderRule{
		{Path: "/*", Values: [][2]string{{"X-Frame-Options", "DENY"}}},
		{Path: "/docs/*", Values: [][2]string{{"cache-control", "public, max-age=60"}, {"X-Docs", "yes"}}},
		{Path: "/style.css", Values: [][2]string{{"Link", "</a.woff2>; rel=preload"}, {"Link", "</b.woff2>; rel=preload"}, {"ETag", `"bogus"`}}},
	}
}

// hdrWant checks one response field: want "" means absent; a leading "~" means contains.
type hdrWant map[string]string

type conformanceCase struct {
	name   string
	method string // GET if empty
	target string
	header []string
	status int
	hdr    hdrWant
	body   []byte // expected body, if not nil
	check  func(t *testing.T, r rawResponse)
}

func TestConformance(t *testing.T) {
	files := mainFiles()
	d := newDeploy(t, files, mainRules, SiteOptions{})
	h := NewHandler(HandlerConfig{})
	h.SetSite(d.site)
	srv := startServer(t, h)

	body := func(p string) []byte { return files[p].body }
	variant := func(p, c string) []byte { return files[p].variants[c] }
	etag := func(p string) string { return etagOf(body(p)) }
	vetag := func(p, c string) string { return etagOf(variant(p, c)) }
	lm := testCreated.Format(http.TimeFormat)
	before := testCreated.Add(-1e9 * 3600).Format(http.TimeFormat)
	after := testCreated.Add(1e9 * 3600).Format(http.TimeFormat)
	medium := body("/medium.bin")
	big := body("/big.bin")
	n := strconv.Itoa
	notFoundRoot := body("/404.html")

	cases := []conformanceCase{
		// Methods.
		{name: "GET dir index", target: "/", status: 200, body: body("/index.html"), hdr: hdrWant{
			"Etag": etag("/index.html"), "Content-Type": "text/html; charset=utf-8",
			"Cache-Control": ccRevalidate, "X-Content-Type-Options": "nosniff", "Last-Modified": lm,
			"X-Frame-Options": "DENY", "Vary": "Accept-Encoding", "Content-Length": n(len(body("/index.html"))),
			"Accept-Ranges": "bytes", "Content-Encoding": ""}},
		{name: "HEAD like GET", method: "HEAD", target: "/", status: 200, body: []byte{}, hdr: hdrWant{
			"Etag": etag("/index.html"), "Content-Length": n(len(body("/index.html"))), "Vary": "Accept-Encoding"}},
		{name: "POST 405", method: "POST", target: "/", status: 405, hdr: hdrWant{"Allow": "GET, HEAD, OPTIONS", "X-Content-Type-Options": "nosniff"}},
		{name: "PUT 405", method: "PUT", target: "/about", status: 405, hdr: hdrWant{"Allow": "GET, HEAD, OPTIONS"}},
		{name: "DELETE 405", method: "DELETE", target: "/nope", status: 405, hdr: hdrWant{"Allow": "GET, HEAD, OPTIONS"}},
		{name: "OPTIONS 204", method: "OPTIONS", target: "/anything", status: 204, body: []byte{}, hdr: hdrWant{"Allow": "GET, HEAD, OPTIONS"}},
		{name: "HEAD on 404", method: "HEAD", target: "/nope", status: 404, body: []byte{}, hdr: hdrWant{
			"Content-Length": n(len(notFoundRoot)), "Content-Type": "text/html; charset=utf-8", "Etag": ""}},

		// Paths: exact files, indexes, clean URLs, 404 pages.
		{name: "index.html canonical", target: "/index.html", status: 301, hdr: hdrWant{"Location": "/"}},
		{name: "clean URL", target: "/about", status: 200, body: body("/about.html")},
		{name: "clean URL redirect", target: "/about.html", status: 301, hdr: hdrWant{"Location": "/about"}},
		{name: "clean URL redirect keeps query", target: "/about.html?x=1&y=2", status: 301, hdr: hdrWant{"Location": "/about?x=1&y=2"}},
		{name: "dir index", target: "/docs/", status: 200, body: body("/docs/index.html"), hdr: hdrWant{"Cache-Control": "public, max-age=60", "X-Docs": "yes"}},
		{name: "dir index.html canonical", target: "/docs/index.html", status: 301, hdr: hdrWant{"Location": "/docs/"}},
		{name: "missing slash", target: "/posts/2024/hello", status: 301, hdr: hdrWant{"Location": "/posts/2024/hello/"}},
		{name: "missing slash keeps query", target: "/posts/2024/hello?a=b", status: 301, hdr: hdrWant{"Location": "/posts/2024/hello/?a=b"}},
		{name: "clean URL in dir", target: "/docs/guide", status: 200, body: body("/docs/guide.html")},
		{name: "nearest 404 in dir", target: "/docs/missing", status: 404, body: body("/docs/404.html"), hdr: hdrWant{"Etag": "", "Last-Modified": "", "Accept-Ranges": ""}},
		{name: "nearest 404 deep", target: "/docs/a/b/c", status: 404, body: body("/docs/404.html")},
		{name: "root 404", target: "/a/b/c", status: 404, body: notFoundRoot},
		{name: "404 page negotiated", target: "/docs/missing", header: []string{"Accept-Encoding: gzip"}, status: 404,
			body: variant("/docs/404.html", "gzip"), hdr: hdrWant{"Content-Encoding": "gzip", "Vary": "Accept-Encoding"}},
		{name: "404 page ignores preconditions", target: "/nope", header: []string{"If-None-Match: *"}, status: 404, body: notFoundRoot},
		{name: "404 page ignores range", target: "/nope", header: []string{"Range: bytes=0-1"}, status: 404, body: notFoundRoot},
		{name: "404 page ignores If-Match", target: "/nope", header: []string{`If-Match: "x"`}, status: 404, body: notFoundRoot},
		{name: "empty file", target: "/empty.txt", status: 200, body: []byte{}, hdr: hdrWant{"Content-Length": "0", "Etag": etag("/empty.txt")}},
		{name: "well-known served", target: "/.well-known/security.txt", status: 200, body: body("/.well-known/security.txt")},

		// Paths that must never reach a file.
		{name: "encoded dotdot", target: "/%2e%2e/etc/passwd", status: 400},
		{name: "encoded dotdot inside", target: "/docs/%2e%2e/about", status: 400},
		{name: "mixed case encoded dotdot", target: "/docs/%2E%2e/about", status: 400},
		{name: "literal dotdot", target: "/docs/../about", status: 400},
		{name: "dot segment", target: "/./about", status: 400},
		{name: "encoded dot", target: "/docs/%2e/guide", status: 400},
		{name: "encoded slash", target: "/docs%2Fguide", status: 400},
		{name: "encoded slash lower", target: "/docs%2fguide", status: 400},
		{name: "NUL", target: "/about%00.html", status: 400},
		{name: "encoded backslash", target: "/docs%5Cguide", status: 400},
		{name: "encoded newline", target: "/about%0d%0aX-Evil:%201", status: 400},
		{name: "invalid UTF-8", target: "/%ff", status: 400},
		{name: "double slash", target: "//double", status: 404, body: notFoundRoot},
		{name: "double slash inside", target: "/docs//guide", status: 404},
		{name: "dotfile", target: "/.env", status: 404, body: notFoundRoot},
		{name: "encoded dotfile", target: "/%2eenv", status: 404, body: notFoundRoot},
		{name: "dot dir", target: "/.git/config", status: 404, body: notFoundRoot},
		{name: "dot dir in manifest", target: "/.svn/entries", status: 404, body: notFoundRoot},
		{name: "HEAD dot dir", method: "HEAD", target: "/.git/config", status: 404, body: []byte{}},
		{name: "nested dot dir", target: "/dir/.hidden/x.txt", status: 404, body: notFoundRoot},
		{name: "dot dir listing", target: "/.git/", status: 404, body: notFoundRoot},
		{name: "no listing", target: "/dir/", status: 404, body: notFoundRoot},
		{name: "absolute form", target: "http://edge.test/about", status: 200, body: body("/about.html")},

		// Encoding negotiation.
		{name: "no Accept-Encoding", target: "/style.css", status: 200, body: body("/style.css"), hdr: hdrWant{"Vary": "Accept-Encoding", "Content-Encoding": "", "Etag": etag("/style.css")}},
		{name: "gzip", target: "/style.css", header: []string{"Accept-Encoding: gzip"}, status: 200, body: variant("/style.css", "gzip"),
			hdr: hdrWant{"Content-Encoding": "gzip", "Etag": vetag("/style.css", "gzip"), "Content-Length": n(len(variant("/style.css", "gzip"))), "Vary": "Accept-Encoding", "Content-Type": "text/css; charset=utf-8", "Accept-Ranges": ""}},
		{name: "browser set prefers br", target: "/style.css", header: []string{"Accept-Encoding: gzip, deflate, br, zstd"}, status: 200, body: variant("/style.css", "br"), hdr: hdrWant{"Content-Encoding": "br", "Etag": vetag("/style.css", "br")}},
		{name: "zstd over gzip on a tie", target: "/style.css", header: []string{"Accept-Encoding: gzip, zstd"}, status: 200, body: variant("/style.css", "zstd")},
		{name: "q-values", target: "/style.css", header: []string{"Accept-Encoding: br;q=0.5, gzip;q=0.8, zstd;q=0.1"}, status: 200, body: variant("/style.css", "gzip")},
		{name: "case-insensitive", target: "/style.css", header: []string{"Accept-Encoding: GZip;Q=1"}, status: 200, body: variant("/style.css", "gzip")},
		{name: "x-gzip", target: "/style.css", header: []string{"Accept-Encoding: x-gzip"}, status: 200, body: variant("/style.css", "gzip")},
		{name: "star", target: "/style.css", header: []string{"Accept-Encoding: *"}, status: 200, body: variant("/style.css", "br")},
		{name: "star refuses all", target: "/style.css", header: []string{"Accept-Encoding: *;q=0"}, status: 406, hdr: hdrWant{"Vary": "Accept-Encoding", "Etag": ""}},
		{name: "star;q=0 with gzip", target: "/style.css", header: []string{"Accept-Encoding: *;q=0, gzip"}, status: 200, body: variant("/style.css", "gzip")},
		{name: "star;q=0 with identity", target: "/style.css", header: []string{"Accept-Encoding: *;q=0, identity"}, status: 200, body: body("/style.css")},
		{name: "identity;q=0 alone", target: "/style.css", header: []string{"Accept-Encoding: identity;q=0"}, status: 406, hdr: hdrWant{"Vary": "Accept-Encoding"}},
		{name: "identity;q=0 no variants", target: "/about", header: []string{"Accept-Encoding: identity;q=0"}, status: 406, hdr: hdrWant{"Vary": ""}},
		{name: "identity;q=0 with gzip", target: "/style.css", header: []string{"Accept-Encoding: gzip, identity;q=0"}, status: 200, body: variant("/style.css", "gzip")},
		{name: "gzip;q=0", target: "/style.css", header: []string{"Accept-Encoding: gzip;q=0"}, status: 200, body: body("/style.css")},
		{name: "identity preferred", target: "/style.css", header: []string{"Accept-Encoding: identity;q=0.9, gzip;q=0.5"}, status: 200, body: body("/style.css")},
		{name: "unknown codings", target: "/style.css", header: []string{"Accept-Encoding: compress, deflate, snappy"}, status: 200, body: body("/style.css")},
		{name: "bad q ignored", target: "/style.css", header: []string{"Accept-Encoding: br;q=1.5, gzip;q=abc"}, status: 200, body: body("/style.css")},
		{name: "empty Accept-Encoding", target: "/style.css", header: []string{"Accept-Encoding:"}, status: 200, body: body("/style.css")},
		{name: "two field lines", target: "/style.css", header: []string{"Accept-Encoding: deflate", "Accept-Encoding: gzip"}, status: 200, body: variant("/style.css", "gzip")},
		{name: "no variants no Vary", target: "/about", header: []string{"Accept-Encoding: gzip"}, status: 200, body: body("/about.html"), hdr: hdrWant{"Vary": "", "Content-Encoding": ""}},
		{name: "real gzip decodes", target: "/", header: []string{"Accept-Encoding: gzip"}, status: 200, check: func(t *testing.T, r rawResponse) {
			zr, err := gzip.NewReader(bytes.NewReader(r.body))
			if err != nil {
				t.Fatal(err)
			}
			if got, _ := io.ReadAll(zr); !bytes.Equal(got, body("/index.html")) {
				t.Error("gzip variant does not decode to the page")
			}
		}},

		// Preconditions (RFC 9110 §13).
		{name: "INM match 304", target: "/style.css", header: []string{"If-None-Match: " + etag("/style.css")}, status: 304, body: []byte{}, hdr: hdrWant{
			"Etag": etag("/style.css"), "Vary": "Accept-Encoding", "Cache-Control": ccRevalidate, "Link": "~</a.woff2>",
			"Content-Type": "", "Content-Length": "", "Last-Modified": "", "X-Content-Type-Options": "nosniff"}},
		{name: "INM weak comparison", target: "/style.css", header: []string{"If-None-Match: W/" + etag("/style.css")}, status: 304},
		{name: "INM list", target: "/style.css", header: []string{`If-None-Match: "a", ` + etag("/style.css") + `, "b"`}, status: 304},
		{name: "INM star", target: "/style.css", header: []string{"If-None-Match: *"}, status: 304},
		{name: "INM other", target: "/style.css", header: []string{`If-None-Match: "other"`}, status: 200, body: body("/style.css")},
		{name: "INM variant etag, identity chosen", target: "/style.css", header: []string{"If-None-Match: " + vetag("/style.css", "gzip")}, status: 200},
		{name: "INM variant 304", target: "/style.css", header: []string{"Accept-Encoding: gzip", "If-None-Match: " + vetag("/style.css", "gzip")}, status: 304,
			hdr: hdrWant{"Etag": vetag("/style.css", "gzip"), "Vary": "Accept-Encoding", "Content-Encoding": ""}},
		{name: "INM garbage", target: "/style.css", header: []string{"If-None-Match: garbage"}, status: 200},
		{name: "IMS not modified", target: "/about", header: []string{"If-Modified-Since: " + lm}, status: 304, hdr: hdrWant{"Etag": etag("/about.html")}},
		{name: "IMS later", target: "/about", header: []string{"If-Modified-Since: " + after}, status: 304},
		{name: "IMS earlier", target: "/about", header: []string{"If-Modified-Since: " + before}, status: 200},
		{name: "IMS invalid", target: "/about", header: []string{"If-Modified-Since: yesterday"}, status: 200},
		{name: "IMS ignored with INM", target: "/about", header: []string{`If-None-Match: "x"`, "If-Modified-Since: " + after}, status: 200},
		{name: "HEAD 304", method: "HEAD", target: "/about", header: []string{"If-None-Match: " + etag("/about.html")}, status: 304},
		{name: "If-Match ok", target: "/about", header: []string{"If-Match: " + etag("/about.html")}, status: 200},
		{name: "If-Match star", target: "/about", header: []string{"If-Match: *"}, status: 200},
		{name: "If-Match fails", target: "/about", header: []string{`If-Match: "other"`}, status: 412, hdr: hdrWant{"Etag": ""}},
		{name: "If-Match weak fails", target: "/about", header: []string{"If-Match: W/" + etag("/about.html")}, status: 412},
		{name: "If-Match fails before INM", target: "/about", header: []string{`If-Match: "x"`, "If-None-Match: " + etag("/about.html")}, status: 412},
		{name: "IUS before", target: "/about", header: []string{"If-Unmodified-Since: " + before}, status: 412},
		{name: "IUS after", target: "/about", header: []string{"If-Unmodified-Since: " + after}, status: 200},
		{name: "IUS ignored with If-Match", target: "/about", header: []string{"If-Match: *", "If-Unmodified-Since: " + before}, status: 200},
		{name: "412 keeps Vary", target: "/style.css", header: []string{`If-Match: "x"`}, status: 412, hdr: hdrWant{"Vary": "Accept-Encoding"}},

		// Ranges (RFC 9110 §14).
		{name: "range", target: "/medium.bin", header: []string{"Range: bytes=0-9"}, status: 206, body: medium[:10],
			hdr: hdrWant{"Content-Range": "bytes 0-9/200000", "Content-Length": "10", "Etag": etag("/medium.bin")}},
		{name: "range open", target: "/medium.bin", header: []string{"Range: bytes=199990-"}, status: 206, body: medium[199990:]},
		{name: "range suffix", target: "/medium.bin", header: []string{"Range: bytes=-10"}, status: 206, body: medium[len(medium)-10:], hdr: hdrWant{"Content-Range": "bytes 199990-199999/200000"}},
		{name: "range suffix longer than file", target: "/empty.txt", header: []string{"Range: bytes=-10"}, status: 416, hdr: hdrWant{"Content-Range": "bytes */0"}},
		{name: "range last past end clamps", target: "/medium.bin", header: []string{"Range: bytes=199999-999999999999999999999"}, status: 206, body: medium[199999:]},
		{name: "range unit case", target: "/medium.bin", header: []string{"Range: BYTES=0-1"}, status: 206, body: medium[:2]},
		{name: "range malformed abc", target: "/medium.bin", header: []string{"Range: bytes=abc"}, status: 200, body: medium},
		{name: "range reversed", target: "/medium.bin", header: []string{"Range: bytes=5-1"}, status: 200, body: medium},
		{name: "range -0", target: "/medium.bin", header: []string{"Range: bytes=-0"}, status: 416, hdr: hdrWant{"Content-Range": "bytes */200000", "Content-Type": "text/plain; charset=utf-8"}},
		{name: "range past end", target: "/medium.bin", header: []string{"Range: bytes=200000-"}, status: 416, hdr: hdrWant{"Content-Range": "bytes */200000"}},
		{name: "range one satisfiable", target: "/medium.bin", header: []string{"Range: bytes=300000-,0-1"}, status: 206, body: medium[:2]},
		{name: "range other unit", target: "/medium.bin", header: []string{"Range: items=0-1"}, status: 200, body: medium},
		{name: "range empty set", target: "/medium.bin", header: []string{"Range: bytes="}, status: 200, body: medium},
		{name: "range two fields", target: "/medium.bin", header: []string{"Range: bytes=0-1", "Range: bytes=2-3"}, status: 200, body: medium},
		{name: "range overlapping", target: "/medium.bin", header: []string{"Range: bytes=0-,0-,0-"}, status: 200, body: medium},
		{name: "range too many", target: "/medium.bin", header: []string{"Range: bytes=" + manyRanges(40)}, status: 200, body: medium},
		{name: "range on HEAD ignored", method: "HEAD", target: "/medium.bin", header: []string{"Range: bytes=0-1"}, status: 200, hdr: hdrWant{"Content-Length": "200000"}},
		{name: "multi-range", target: "/medium.bin", header: []string{"Range: bytes=0-0,-1"}, status: 206,
			check: checkMultipart(medium, "application/octet-stream", []byteRange{{0, 1}, {199999, 1}})},
		{name: "multi-range many", target: "/medium.bin", header: []string{"Range: bytes=10-19, 100-199,1000-1001"}, status: 206,
			check: checkMultipart(medium, "application/octet-stream", []byteRange{{10, 10}, {100, 100}, {1000, 2}})},
		{name: "multi-range one byte file", target: "/.well-known/security.txt", header: []string{"Range: bytes=0-0,-1"}, status: 206,
			check: checkMultipart(body("/.well-known/security.txt"), "text/plain; charset=utf-8", []byteRange{{0, 1}, {int64(len(body("/.well-known/security.txt")) - 1), 1}})},
		{name: "If-Range etag match", target: "/medium.bin", header: []string{"Range: bytes=0-1", "If-Range: " + etag("/medium.bin")}, status: 206, body: medium[:2]},
		{name: "If-Range etag mismatch", target: "/medium.bin", header: []string{"Range: bytes=0-1", `If-Range: "old"`}, status: 200, body: medium},
		{name: "If-Range weak", target: "/medium.bin", header: []string{"Range: bytes=0-1", "If-Range: W/" + etag("/medium.bin")}, status: 200, body: medium},
		{name: "If-Range date match", target: "/medium.bin", header: []string{"Range: bytes=0-1", "If-Range: " + lm}, status: 206, body: medium[:2]},
		{name: "If-Range date other", target: "/medium.bin", header: []string{"Range: bytes=0-1", "If-Range: " + before}, status: 200, body: medium},
		{name: "If-Range garbage", target: "/medium.bin", header: []string{"Range: bytes=0-1", "If-Range: soon"}, status: 200, body: medium},
		{name: "range serves identity", target: "/style.css", header: []string{"Range: bytes=0-3", "Accept-Encoding: gzip, br"}, status: 206,
			body: body("/style.css")[:4], hdr: hdrWant{"Content-Encoding": "", "Vary": "Accept-Encoding", "Etag": etag("/style.css")}},
		{name: "range, identity refused", target: "/style.css", header: []string{"Range: bytes=0-3", "Accept-Encoding: gzip, identity;q=0"}, status: 200,
			body: variant("/style.css", "gzip"), hdr: hdrWant{"Content-Encoding": "gzip", "Vary": "Accept-Encoding"}},
		{name: "416 keeps Vary", target: "/style.css", header: []string{"Range: bytes=999999-"}, status: 416, hdr: hdrWant{"Vary": "Accept-Encoding"}},
		{name: "304 beats range", target: "/medium.bin", header: []string{"Range: bytes=0-1", "If-None-Match: " + etag("/medium.bin")}, status: 304},

		// Chunked files.
		{name: "chunked whole", target: "/big.bin", status: 200, body: big, hdr: hdrWant{"Etag": etag("/big.bin"), "Content-Length": "300000"}},
		{name: "chunked range across boundary", target: "/big.bin", header: []string{"Range: bytes=99990-100009"}, status: 206, body: big[99990:100010]},
		{name: "chunked range across two boundaries", target: "/big.bin", header: []string{"Range: bytes=99999-170000"}, status: 206, body: big[99999:170001]},
		{name: "chunked range in last chunk", target: "/big.bin", header: []string{"Range: bytes=-5"}, status: 206, body: big[len(big)-5:]},
		{name: "chunked range at boundary", target: "/big.bin", header: []string{"Range: bytes=170000-170001"}, status: 206, body: big[170000:170002]},
		{name: "chunked multi-range", target: "/big.bin", header: []string{"Range: bytes=0-0,99999-100000,169999-170000,-1"}, status: 206,
			check: checkMultipart(big, "application/octet-stream", []byteRange{{0, 1}, {99999, 2}, {169999, 2}, {299999, 1}})},

		// _redirects.
		{name: "redirect", target: "/old", status: 301, hdr: hdrWant{"Location": "/about"}},
		{name: "redirect keeps query", target: "/old?x=1", status: 301, hdr: hdrWant{"Location": "/about?x=1"}},
		{name: "redirect placeholders", target: "/blog/2024/hello", status: 302, hdr: hdrWant{"Location": "/posts/2024/hello/"}},
		{name: "redirect splat", target: "/go/docs/guide", status: 302, hdr: hdrWant{"Location": "/docs/guide"}},
		{name: "redirect splat no open redirect", target: "/go//evil.example/x", status: 302, hdr: hdrWant{"Location": "/evil.example/x"}},
		{name: "redirect splat escaped", target: "/go/a%20b%3Fc", status: 302, hdr: hdrWant{"Location": "/a%20b%3Fc"}},
		{name: "redirect absolute", target: "/ext/a/b?q=1", status: 301, hdr: hdrWant{"Location": "https://example.com/a/b?q=1"}},
		{name: "redirect target query kept", target: "/q?z=1", status: 301, hdr: hdrWant{"Location": "/docs/?x=1"}},
		{name: "redirect appends query", target: "/search?q=a+b", status: 302, hdr: hdrWant{"Location": "/docs/?q=a+b"}},
		{name: "rule beats canonical redirect", target: "/docs", status: 302, hdr: hdrWant{"Location": "/about"}},
		{name: "rewrite", target: "/app/dashboard", status: 200, body: body("/index.html"), hdr: hdrWant{"Etag": etag("/index.html"), "X-Frame-Options": "DENY"}},
		{name: "rewrite conditional", target: "/app/x", header: []string{"If-None-Match: " + etag("/index.html")}, status: 304},
		{name: "rewrite HEAD", method: "HEAD", target: "/app/x", status: 200, body: []byte{}, hdr: hdrWant{"Content-Length": n(len(body("/index.html")))}},
		{name: "410 with page", target: "/removed", status: 410, body: notFoundRoot},
		{name: "404 rule nearest page", target: "/docs/old", status: 404, body: body("/docs/404.html")},
		{name: "451 rule", target: "/legal", status: 451, body: notFoundRoot},
		{name: "forced rule", target: "/forced.txt", status: 200, body: body("/index.html")},
		{name: "shadowed rule", target: "/shadowed.txt", status: 200, body: body("/shadowed.txt")},

		// _headers and Cache-Control defaults.
		{name: "rule overrides Cache-Control", target: "/docs/guide", status: 200, hdr: hdrWant{"Cache-Control": "public, max-age=60", "X-Docs": "yes", "X-Frame-Options": "DENY"}},
		{name: "rule values and protected fields", target: "/style.css", status: 200, check: func(t *testing.T, r rawResponse) {
			if got := r.header["Link"]; !slices.Equal(got, []string{"</a.woff2>; rel=preload", "</b.woff2>; rel=preload"}) {
				t.Errorf("Link = %q", got)
			}
			if got := r.header.Get("Etag"); got != etag("/style.css") {
				t.Errorf("a rule changed the ETag to %s", got)
			}
		}},
		{name: "fingerprinted immutable", target: "/app.3f9a2c1b.js", status: 200, hdr: hdrWant{"Cache-Control": ccImmutable}},
		{name: "plain asset revalidates", target: "/medium.bin", status: 200, hdr: hdrWant{"Cache-Control": ccRevalidate}},
		{name: "404 page Cache-Control", target: "/nope", status: 404, hdr: hdrWant{"Cache-Control": ccRevalidate}},
	}
	t.Run("HTTP/1.1", func(t *testing.T) { runConformance(t, overHTTP1(srv), cases) })
	t.Run("HTTP/1.1 net/http", func(t *testing.T) { runConformance(t, overHTTP1(startStdServer(t, h)), cases) })
	t.Run("HTTP/2", func(t *testing.T) { runConformance(t, overHTTP2(t, h), cases) })
}

func manyRanges(n int) string {
	var parts []string
	for i := range n {
		parts = append(parts, fmt.Sprintf("%d-%d", i*10, i*10+1))
	}
	return strings.Join(parts, ",")
}

// runConformance sends every case over a real connection and checks status, fields and body.
func runConformance(t *testing.T, send sender, cases []conformanceCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			method := cmp.Or(c.method, "GET")
			r := send(t, method, c.target, c.header...)
			if r.status != c.status {
				t.Fatalf("%s %s: status %d, want %d (body %.80q)", method, c.target, r.status, c.status, r.body)
			}
			if got := r.header.Get("X-Content-Type-Options"); got != "nosniff" {
				t.Errorf("X-Content-Type-Options = %q", got)
			}
			for k, want := range c.hdr {
				got, ok := r.header[http.CanonicalHeaderKey(k)]
				switch {
				case want == "" && ok:
					t.Errorf("%s = %q, want absent", k, got)
				case strings.HasPrefix(want, "~"):
					if !strings.Contains(strings.Join(got, "\n"), want[1:]) {
						t.Errorf("%s = %q, want it to contain %q", k, got, want[1:])
					}
				case want != "" && (len(got) != 1 || got[0] != want):
					t.Errorf("%s = %q, want %q", k, got, want)
				}
			}
			if c.body != nil && !bytes.Equal(r.body, c.body) {
				t.Errorf("body: got %d bytes %.60q, want %d bytes %.60q", len(r.body), r.body, len(c.body), c.body)
			}
			if cl := r.header.Get("Content-Length"); cl != "" && method == "GET" && cl != strconv.Itoa(len(r.body)) {
				t.Errorf("Content-Length %s for a body of %d bytes", cl, len(r.body))
			}
			if c.check != nil {
				c.check(t, r)
			}
		})
	}
}

// checkMultipart returns a check that the body is multipart/byteranges with these parts.
func checkMultipart(content []byte, ctype string, want []byteRange) func(t *testing.T, r rawResponse) {
	return func(t *testing.T, r rawResponse) {
		t.Helper()
		mt, params, err := mime.ParseMediaType(r.header.Get("Content-Type"))
		if err != nil || mt != "multipart/byteranges" {
			t.Fatalf("Content-Type = %q", r.header.Get("Content-Type"))
		}
		if cl := r.header.Get("Content-Length"); cl != strconv.Itoa(len(r.body)) {
			t.Errorf("Content-Length %s for a body of %d bytes", cl, len(r.body))
		}
		mr := multipart.NewReader(bytes.NewReader(r.body), params["boundary"])
		for i, w := range want {
			p, err := mr.NextPart()
			if err != nil {
				t.Fatalf("part %d: %v", i, err)
			}
			if got := p.Header.Get("Content-Type"); got != ctype {
				t.Errorf("part %d Content-Type = %q", i, got)
			}
			if got, wantCR := p.Header.Get("Content-Range"), formatContentRange(w, int64(len(content))); got != wantCR {
				t.Errorf("part %d Content-Range = %q, want %q", i, got, wantCR)
			}
			b, _ := io.ReadAll(p)
			if !bytes.Equal(b, content[w.start:w.start+w.length]) {
				t.Errorf("part %d: wrong bytes", i)
			}
		}
		if _, err := mr.NextPart(); err != io.EOF {
			t.Errorf("more parts than %d: %v", len(want), err)
		}
	}
}
