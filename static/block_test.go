package static

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dt-cdn/dt/internal/h1"
	"github.com/dt-cdn/dt/internal/httpserve"
	"github.com/dt-cdn/dt/internal/sendconn"
	"github.com/dt-cdn/dt/site"
)

// mapOnly hides package h1's HeaderBlockWriter from the handler, and nothing else it serves
// by (FileSender): the responses go by the header map.
type mapOnly struct {
	http.ResponseWriter
	fs sendconn.FileSender
}

func (w mapOnly) SendFileAt(fd int, off, n int64) (int64, error) { return w.fs.SendFileAt(fd, off, n) }

func serveMapOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := w.(h1.HeaderBlockWriter); !ok {
			panic("package h1 gives no HeaderBlockWriter")
		}
		h.ServeHTTP(mapOnly{w, w.(sendconn.FileSender)}, r)
	})
}

// blockTestFiles are files of every kind a header block is made for: plain, with real gzip and
// labelled br and zstd variants, chunked, on disk (over DefaultMaxMemoryFile, sent by
// sendfile), empty, and under _headers rules (blockTestRules).
func blockTestFiles() map[string]*testFile {
	return map[string]*testFile{
		"/index.html":      {body: htmlPage("index", 2000), typ: "text/html; charset=utf-8"},
		"/app.3f9a2c1b.js": {body: jsSource(30 << 10), typ: "text/javascript", codings: []string{"gzip", "br", "zstd"}},
		"/style.css":       {body: jsSource(5 << 10), typ: "text/css", codings: []string{"gzip"}},
		"/chunked.bin":     {body: randomBytes(5, 90<<10), typ: "application/octet-stream", chunkAt: []int{30 << 10, 60 << 10}},
		"/big.txt":         {body: jsSource(100 << 10), typ: " text/plain ", codings: []string{"gzip"}},
		"/empty.txt":       {body: nil, typ: "text/plain"},
		"/docs/a.html":     {body: htmlPage("a", 800), typ: "text/html"},
		"/docs/b.json":     {body: []byte(`{"b":1}`), typ: "application/json", codings: []string{"br"}},
		"/docs/index.html": {body: htmlPage("docs", 600), typ: "text/html"},
		"/fonts/f.woff2":   {body: randomBytes(6, 3000), typ: "font/woff2"},
	}
}

// blockTestRules are _headers rules: new fields, overrides of Cache-Control and Content-Type,
// a field of two values, a name not in canonical form.
var blockTestRules = []site.HeaderRule{
	{Path: "/docs/*", Values: [][2]string{{"X-Frame-Options", "DENY"}, {"Cache-Control", "public, max-age=60"},
		{"Link", "</a.css>; rel=preload"}, {"Link", "</b.js>; rel=preload"}}},
	{Path: "/docs/b.json", Values: [][2]string{{"content-type", "application/vnd.x+json"}, {"Access-Control-Allow-Origin", "*"}}},
	{Path: "/fonts/*", Values: [][2]string{{"Access-Control-Allow-Origin", "*"}, {"Content-Language", "en"}}},
}

// For every kind of file and representation, with and without Last-Modified, a response by
// package h1 whose fields go in a header block has the same status line and fields, values
// included, as the same response by the header map, over real sockets, for GET and HEAD; and
// the block is what the response used.
func TestHeaderBlockSameFields(t *testing.T) {
	t.Parallel()
	for _, lastModified := range []bool{true, false} {
		d := newDeploy(t, blockTestFiles(), func(m *site.Manifest) {
			m.Headers = blockTestRules
			m.CleanURLs = true
		}, SiteOptions{})
		if !lastModified {
			// A manifest without a creation time no longer validates; a Site still allows for one.
			d.site.lastModified = nil
		}
		h := NewHandler(HandlerConfig{})
		h.SetSite(d.site)
		byBlock := startServer(t, h)
		byMap := serveWith(t, httpserve.Config{Handler: serveMapOnly(h)})
		paths := []string{"/index.html", "/", "/app.3f9a2c1b.js", "/style.css", "/chunked.bin",
			"/big.txt", "/empty.txt", "/docs/a", "/docs/", "/docs/b.json", "/fonts/f.woff2"}
		for _, p := range paths {
			for _, ae := range []string{"", "gzip", "br", "zstd", "gzip, br;q=0.5"} {
				for _, method := range []string{http.MethodGet, http.MethodHead} {
					lines := []string{}
					if ae != "" {
						lines = append(lines, "Accept-Encoding: "+ae)
					}
					want := rawHeader(t, byMap.Addr, method, p, lines)
					got := rawHeader(t, byBlock.Addr, method, p, lines)
					if !slices.Equal(got, want) {
						t.Errorf("Last-Modified %v, %s %s, Accept-Encoding %q:\nblock: %q\nmap:   %q", lastModified, method, p, ae, got, want)
					}
				}
			}
		}
		for _, p := range paths {
			if rt := d.site.routes[p]; rt.location == "" && rt.blocks[identity].Load() == nil {
				t.Errorf("%s: no header block made", p)
			}
		}
	}
}

// rawHeader sends one request on a new connection and returns the response's header section
// as it came, its field lines sorted and Date's value blanked, after reading the body whole.
// The request's Host is edge.test unless lines give one.
func rawHeader(t *testing.T, addr, method, path string, lines []string) []string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Minute))
	req := method + " " + path + " HTTP/1.1\r\n"
	if !slices.ContainsFunc(lines, func(l string) bool { return strings.HasPrefix(l, "Host: ") }) {
		req += "Host: edge.test\r\n"
	}
	for _, l := range lines {
		req += l + "\r\n"
	}
	if _, err := io.WriteString(c, req+"Connection: close\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	var out []string
	clen := -1
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("%s %s: %v after %q", method, path, err, out)
		}
		if line == "\r\n" {
			break
		}
		if strings.HasPrefix(line, "Date: ") {
			line = "Date: -\r\n"
		}
		if v, ok := strings.CutPrefix(line, "Content-Length: "); ok {
			clen, _ = strconv.Atoi(strings.TrimSpace(v))
		}
		out = append(out, line)
	}
	slices.Sort(out[1:])
	body, err := io.ReadAll(br)
	if err != nil || method == http.MethodGet && clen >= 0 && len(body) != clen || method == http.MethodHead && len(body) != 0 {
		t.Fatalf("%s %s: %d body bytes for Content-Length %d: %v", method, path, len(body), clen, err)
	}
	return out
}

// The header map takes over when a layer in front of the handler set a field the block holds:
// the response has the handler's value once, as without blocks; a field the block does not
// hold stays beside it.
func TestHeaderBlockFieldSetInFront(t *testing.T) {
	t.Parallel()
	d := newDeploy(t, blockTestFiles(), nil, SiteOptions{})
	h := NewHandler(HandlerConfig{})
	h.SetSite(d.site)
	srv := serveWith(t, httpserve.Config{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(r.Header.Get("X-Set-Name"), "from-front")
		h.ServeHTTP(w, r)
	})})
	for name, want := range map[string][]string{
		"Cache-Control":             {"public, max-age=0, must-revalidate"},
		"Etag":                      {etagOf(d.files["/index.html"].body)},
		"Strict-Transport-Security": {"from-front"},
	} {
		resp := do(t, srv, "GET", "/index.html", "X-Set-Name: "+name)
		if got := resp.header[name]; !slices.Equal(got, want) {
			t.Errorf("%s set in front: response has %q, want %q", name, got, want)
		}
		if resp.status != http.StatusOK || resp.header.Get("Content-Type") != "text/html; charset=utf-8" ||
			resp.header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s set in front: %d %v", name, resp.status, resp.header)
		}
	}
}

// Every kind of response carries X-Content-Type-Options: nosniff once, whether its fields go
// in a header block or by the header map.
func TestNosniffOnce(t *testing.T) {
	t.Parallel()
	d := newDeploy(t, blockTestFiles(), func(m *site.Manifest) { m.CleanURLs = true }, SiteOptions{})
	one := NewHandler(HandlerConfig{})
	one.SetSite(d.site)
	oneSrv := startServer(t, one)
	sitesSrv := startServer(t, threeSites(t, false))
	for _, c := range []struct {
		srv            *testServer
		method, target string
		lines          []string
		status         string
	}{
		{oneSrv, "GET", "/", nil, "200"},
		{oneSrv, "GET", "/index.html", nil, "301"},
		{oneSrv, "HEAD", "/app.3f9a2c1b.js", []string{"Accept-Encoding: br"}, "200"},
		{oneSrv, "GET", "/big.txt", nil, "200"},
		{oneSrv, "GET", "/docs/a", nil, "200"},
		{oneSrv, "GET", "/", []string{"If-None-Match: *"}, "304"},
		{oneSrv, "GET", "/", []string{"If-Match: \"x\""}, "412"},
		{oneSrv, "GET", "/", []string{"Range: bytes=0-9"}, "206"},
		{oneSrv, "GET", "/big.txt", []string{"Range: bytes=0-9"}, "206"},
		{oneSrv, "GET", "/", []string{"Range: bytes=0-0,5-6"}, "206"},
		{oneSrv, "GET", "/", []string{"Range: bytes=999999-"}, "416"},
		{oneSrv, "GET", "/", []string{"Accept-Encoding: identity;q=0"}, "406"},
		{oneSrv, "GET", "/docs", nil, "301"},
		{oneSrv, "GET", "/a%00b", nil, "400"},
		{oneSrv, "GET", "/nope", nil, "404"},
		{oneSrv, "OPTIONS", "/", nil, "204"},
		{oneSrv, "POST", "/", []string{"Content-Length: 0"}, "405"},
		{sitesSrv, "GET", "/", []string{"Host: blog.example.com"}, "200"},
		{sitesSrv, "GET", "/nope", []string{"Host: blog.example.com"}, "404"},
		{sitesSrv, "GET", "/", []string{"Host: nobody.example.com"}, "421"},
		{sitesSrv, "GET", "/", []string{"Host: shop.example.com"}, "503"},
	} {
		lines := rawHeader(t, c.srv.Addr, c.method, c.target, c.lines)
		if !strings.Contains(lines[0], " "+c.status+" ") {
			t.Errorf("%s %s %q: %q, want %s", c.method, c.target, c.lines, lines[0], c.status)
		}
		if n := slices.Index(lines, "X-Content-Type-Options: nosniff\r\n"); n < 0 ||
			slices.Contains(lines[n+1:], lines[n]) {
			t.Errorf("%s %s %q: header %q, want nosniff once", c.method, c.target, c.lines, lines)
		}
	}
}
