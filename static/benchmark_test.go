package static

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/dt-cdn/dt/internal/h1"
	"github.com/dt-cdn/dt/site"
)

// jsSource returns about n bytes of plausible JavaScript: identifiers and literals drawn from a
// small vocabulary, so it compresses about as well as real bundles (3-4x with gzip).
func jsSource(n int) []byte {
	r := rand.New(rand.NewPCG(7, 7))
	words := []string{"const", "let", "function", "return", "if", "else", "for", "await", "async",
		"this", "props", "state", "value", "index", "length", "push", "map", "filter", "render",
		"document", "window", "element", "event", "target", "options", "config", "result", "data"}
	var b strings.Builder
	for b.Len() < n {
		fmt.Fprintf(&b, "%s %s_%d = %s(%s.%s, %d, %q);\n", words[r.IntN(3)], words[r.IntN(len(words))],
			r.IntN(1000), words[r.IntN(len(words))], words[r.IntN(len(words))], words[r.IntN(len(words))],
			r.IntN(100000), words[r.IntN(len(words))])
	}
	return []byte(b.String()[:n])
}

// benchFiles are the three files of the peer benchmark: a 1 KiB page, a 100 KiB script with a
// gzip variant, a 10 MiB binary.
func benchFiles() map[string]*testFile {
	return map[string]*testFile{
		"/index.html":   {body: htmlPage("bench", 1024)[:1024], typ: "text/html; charset=utf-8"},
		"/app.js":       {body: jsSource(100 << 10), typ: "text/javascript; charset=utf-8", codings: []string{"gzip"}},
		"/big.bin":      {body: randomBytes(3, 10<<20), typ: "application/octet-stream"},
		"/404.html":     {body: htmlPage("404", 512), typ: "text/html; charset=utf-8"},
		"/docs/x.html":  {body: htmlPage("x", 512), typ: "text/html; charset=utf-8"},
		"/docs/y.html":  {body: htmlPage("y", 512), typ: "text/html; charset=utf-8"},
		"/img/logo.svg": {body: []byte("<svg/>"), typ: "image/svg+xml"},
	}
}

var benchCases = []struct {
	name, path, acceptEncoding string
}{
	{"html-1KiB", "/index.html", ""},
	{"js-100KiB-gzip", "/app.js", "gzip, deflate, br, zstd"},
	{"bin-10MiB", "/big.bin", ""},
}

// BenchmarkHandler measures the handler alone (no sockets): the per-request work and
// allocations on top of net/http's own.
func BenchmarkHandler(b *testing.B) {
	d := newDeploy(b, benchFiles(), nil, SiteOptions{})
	h := NewHandler(HandlerConfig{})
	h.SetSite(d.site)
	for _, c := range benchCases {
		b.Run(c.name, func(b *testing.B) {
			req := httptest.NewRequest("GET", c.path, nil)
			if c.acceptEncoding != "" {
				req.Header.Set("Accept-Encoding", c.acceptEncoding)
			}
			w := &discardWriter{h: http.Header{}}
			h.ServeHTTP(w, req)
			if w.status != 200 {
				b.Fatalf("status %d", w.status)
			}
			b.SetBytes(w.n)
			b.ReportAllocs()
			for b.Loop() {
				w.reset()
				h.ServeHTTP(w, req)
			}
		})
	}
}

// BenchmarkLoopback measures whole requests over HTTP/1.1 keep-alive on 127.0.0.1, client
// included, served by package h1 (as the edge serves plain HTTP) and by net/http's server.
func BenchmarkLoopback(b *testing.B) {
	d := newDeploy(b, benchFiles(), nil, SiteOptions{})
	h := NewHandler(HandlerConfig{})
	h.SetSite(d.site)
	for _, server := range []struct {
		name  string
		start func(testing.TB, *Handler) *testServer
	}{{"h1", startServer}, {"net-http", startStdServer}} {
		b.Run(server.name, func(b *testing.B) { benchmarkLoopback(b, server.start(b, h)) })
	}
}

func benchmarkLoopback(b *testing.B, srv *testServer) {
	client := srv.Client()
	client.Transport.(*http.Transport).DisableCompression = true
	for _, c := range benchCases {
		b.Run(c.name, func(b *testing.B) {
			req, _ := http.NewRequest("GET", srv.URL+c.path, nil)
			if c.acceptEncoding != "" {
				req.Header.Set("Accept-Encoding", c.acceptEncoding)
			}
			b.ReportAllocs()
			var n int64
			for b.Loop() {
				resp, err := client.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				n, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			b.SetBytes(n)
		})
	}
}

// BenchmarkSites measures the handler path when it picks the site by Host among 1 and 100 sites
// (each with an apex, a www name and a wildcard; the request for the last site's www name), and
// with one site on every host (SetSite, no host table), for the 1 KiB page.
func BenchmarkSites(b *testing.B) {
	d := newDeploy(b, benchFiles(), nil, SiteOptions{})
	for _, n := range []int{0, 1, 100} {
		h := NewHandler(HandlerConfig{})
		host := "edge.test"
		if n == 0 {
			h.SetSite(d.site)
		} else {
			var records []site.Record
			sites := map[string]*Site{}
			for i := range n {
				name := fmt.Sprintf("site%d", i)
				host = "www." + name + ".example.com"
				records = append(records, site.Record{V: 1, Name: name,
					Hosts: []string{name + ".example.com", host, "*." + name + ".example.org"}})
				s, err := NewSite(d.site.ID(), d.m, d.store, SiteOptions{Previous: d.site})
				if err != nil {
					b.Fatal(err)
				}
				sites[name] = s
			}
			h.SetSites(NewSites(site.NewHosts(records, false), sites))
		}
		name := fmt.Sprintf("sites=%d", n)
		if n == 0 {
			name = "one-site-every-host"
		}
		b.Run(name, func(b *testing.B) {
			req := httptest.NewRequest("GET", "/index.html", nil)
			req.Host = host
			w := &discardWriter{h: http.Header{}}
			h.ServeHTTP(w, req)
			if w.status != 200 {
				b.Fatalf("status %d", w.status)
			}
			b.ReportAllocs()
			for b.Loop() {
				w.reset()
				h.ServeHTTP(w, req)
			}
		})
	}
}

// BenchmarkRawH1 measures whole keep-alive requests served by package h1 on 127.0.0.1 for the
// 1 KiB page and the gzip variant of the 100 KiB script (about 26 KB), with a client that
// writes each request by hand and reads each response by its length: it allocates nothing, so
// allocs/op are the server's, and its share of cpu-ns/op stays the same whatever the server
// does.
func BenchmarkRawH1(b *testing.B) {
	files := benchFiles()
	delete(files, "/big.bin")
	d := newDeploy(b, files, nil, SiteOptions{})
	h := NewHandler(HandlerConfig{})
	h.SetSite(d.site)
	srv := startServer(b, h)
	for _, c := range benchCases {
		if c.path == "/big.bin" {
			continue
		}
		b.Run(c.name, func(b *testing.B) {
			var lines []string
			if c.acceptEncoding != "" {
				lines = append(lines, "Accept-Encoding: "+c.acceptEncoding)
			}
			benchmarkRaw(b, srv, c.path, lines...)
		})
	}
}

// blockDiscardWriter is a discardWriter that takes header blocks, as package h1's writer does.
type blockDiscardWriter struct{ discardWriter }

func (w *blockDiscardWriter) WriteHeaderBlock(status int, hb *h1.HeaderBlock, n int64) {
	w.status = status
}

// BenchmarkHandlerHeaderBlock measures the handler alone for the 1 KiB page and the gzip
// script with its fields set in a header map (as over net/http or package h2) and handed over
// as a header block (as over package h1). The map is reused between requests here, where a
// server gives a new one to each.
func BenchmarkHandlerHeaderBlock(b *testing.B) {
	d := newDeploy(b, benchFiles(), nil, SiteOptions{})
	h := NewHandler(HandlerConfig{})
	h.SetSite(d.site)
	for _, c := range benchCases[:2] {
		for _, way := range []string{"map", "block"} {
			b.Run(c.name+"/"+way, func(b *testing.B) {
				req := httptest.NewRequest("GET", c.path, nil)
				if c.acceptEncoding != "" {
					req.Header.Set("Accept-Encoding", c.acceptEncoding)
				}
				bw := &blockDiscardWriter{discardWriter{h: http.Header{}}}
				var w interface {
					http.ResponseWriter
					reset()
				} = &bw.discardWriter
				if way == "block" {
					w = bw
				}
				h.ServeHTTP(w, req)
				if bw.status != 200 || (way == "block") != (len(bw.h) == 0) {
					b.Fatalf("status %d, header map %v", bw.status, bw.h)
				}
				b.ReportAllocs()
				for b.Loop() {
					w.reset()
					h.ServeHTTP(w, req)
				}
			})
		}
	}
}
