package static

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dt-cdn/dt/blobs"
	"github.com/dt-cdn/dt/internal/httpserve"
	"github.com/dt-cdn/dt/site"
)

// testFile describes a file of a test deploy.
type testFile struct {
	body     []byte
	typ      string
	codings  []string // variants to make: "gzip" is real gzip, others are labelled bytes
	chunkAt  []int    // split the raw content into chunks at these offsets
	variants map[string][]byte
}

// deploy is a test deploy: its manifest, the store holding its blobs, and its contents.
type deploy struct {
	m     *site.Manifest
	store *blobs.Store
	files map[string]*testFile
	site  *Site
}

var testCreated = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// newDeploy writes files to a blob store in a temporary directory and builds their manifest
// and Site. Variant bytes are recorded in files[p].variants.
func newDeploy(t testing.TB, files map[string]*testFile, mutate func(m *site.Manifest), opts SiteOptions) *deploy {
	t.Helper()
	st, err := blobs.Open(t.TempDir(), blobs.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	m := &site.Manifest{Version: site.ManifestVersion, Created: testCreated, Files: map[string]site.File{}}
	put := func(b []byte) blobs.Hash {
		h := blobs.Sum(b)
		if err := st.PutBytes(h, b); err != nil {
			t.Fatal(err)
		}
		return h
	}
	for p, tf := range files {
		mf := site.File{Hash: blobs.Sum(tf.body), Size: int64(len(tf.body)), Type: tf.typ}
		if len(tf.chunkAt) == 0 {
			put(tf.body)
		} else {
			prev := 0
			for _, at := range append(append([]int(nil), tf.chunkAt...), len(tf.body)) {
				c := tf.body[prev:at]
				mf.Chunks = append(mf.Chunks, site.Chunk{Hash: put(c), Size: int64(len(c))})
				prev = at
			}
		}
		tf.variants = map[string][]byte{}
		for _, c := range tf.codings {
			var v []byte
			if c == "gzip" {
				var buf bytes.Buffer
				zw := gzip.NewWriter(&buf)
				zw.Write(tf.body)
				zw.Close()
				v = buf.Bytes()
			} else {
				v = append([]byte(c+":"), tf.body[:len(tf.body)/2]...) // smaller, as Validate wants
			}
			tf.variants[c] = v
			if mf.Variants == nil {
				mf.Variants = map[string]site.Variant{}
			}
			mf.Variants[c] = site.Variant{Hash: put(v), Size: int64(len(v))}
		}
		m.Files[p] = mf
	}
	if mutate != nil {
		mutate(m)
	}
	s, err := NewSite(mustID(t, m), m, st, opts)
	if err != nil {
		t.Fatal(err)
	}
	return &deploy{m: m, store: st, files: files, site: s}
}

func mustID(t testing.TB, m *site.Manifest) site.DeployID {
	t.Helper()
	id, err := m.ID()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// etagOf returns the ETag the edge must send for bytes b.
func etagOf(b []byte) string { return `"` + blobs.Sum(b).String() + `"` }

// randomBytes returns n deterministic pseudo-random bytes.
func randomBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// htmlPage returns an HTML document of about n bytes that names itself.
func htmlPage(name string, n int) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "<!doctype html><title>%s</title>\n", name)
	for b.Len() < n {
		fmt.Fprintf(&b, "<p>%s paragraph %d</p>\n", name, b.Len())
	}
	return []byte(b.String())
}

// testServer is an httpserve.Server serving plain HTTP on loopback until its test ends.
type testServer struct {
	t    testing.TB
	URL  string // http://addr
	Addr string
}

// Client returns a client of its own for the server, whose idle connections close with the
// test.
func (s *testServer) Client() *http.Client {
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	s.t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// startServer serves h as an edge serves plain HTTP: by package h1.
func startServer(t testing.TB, h *Handler) *testServer {
	t.Helper()
	return serveWith(t, httpserve.Config{Handler: h})
}

// startStdServer serves h by net/http's server on corked connections (StdHTTP1).
func startStdServer(t testing.TB, h *Handler) *testServer {
	t.Helper()
	return serveWith(t, httpserve.Config{Handler: h, StdHTTP1: true})
}

// serveWith serves cfg.Handler with httpserve.Server.Serve over plain HTTP on 127.0.0.1 until
// the test ends, and checks that the server then shuts down cleanly.
func serveWith(t testing.TB, cfg httpserve.Config) *testServer {
	t.Helper()
	s, err := httpserve.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, ln, nil) }()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	addr := ln.Addr().String()
	return &testServer{t: t, URL: "http://" + addr, Addr: addr}
}

// rawResponse is a response read off the wire.
type rawResponse struct {
	status int
	header http.Header
	body   []byte
}

// do sends one request with exactly the given request target and header lines, on a new
// connection, and reads the response. Writing the request by hand keeps clients from cleaning
// paths or adding Accept-Encoding.
func do(t testing.TB, srv *testServer, method, target string, lines ...string) rawResponse {
	t.Helper()
	conn, err := net.Dial("tcp", srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var req strings.Builder
	fmt.Fprintf(&req, "%s %s HTTP/1.1\r\nHost: edge.test\r\nConnection: close\r\n", method, target)
	for _, l := range lines {
		req.WriteString(l + "\r\n")
	}
	req.WriteString("\r\n")
	if _, err := io.WriteString(conn, req.String()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: method})
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: body: %v", method, target, err)
	}
	return rawResponse{resp.StatusCode, resp.Header, body}
}

// discardWriter is a ResponseWriter that keeps nothing, for benchmarks of the handler alone.
type discardWriter struct {
	h      http.Header
	status int
	n      int64
}

func (w *discardWriter) Header() http.Header { return w.h }
func (w *discardWriter) WriteHeader(s int)   { w.status = s }
func (w *discardWriter) Write(p []byte) (int, error) {
	w.n += int64(len(p))
	return len(p), nil
}

func (w *discardWriter) reset() {
	clear(w.h)
	w.status, w.n = 0, 0
}
