package h1_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/dt-cdn/dt/internal/h1"
)

// blockField is one field a test response carries, by the header map or in a header block.
type blockField struct {
	name   string
	values []string
}

// blockFields are the fields of a static file's response, with values the header map's path
// rewrites (space around, a line break, a non-ASCII end) and a field of two values.
var blockFields = []blockField{
	{"Content-Type", []string{"text/html; charset=utf-8"}},
	{"Cache-Control", []string{"public, max-age=0, must-revalidate"}},
	{"Etag", []string{`"0123456789abcdef"`}},
	{"Last-Modified", []string{"Sun, 01 Mar 2026 12:00:00 GMT"}},
	{"Accept-Ranges", []string{"bytes"}},
	{"X-Spaced", []string{"  padded value\t"}},
	{"X-Split", []string{"one\r\nX-Injected: two"}},
	{"X-Unicode", []string{"café\u00a0"}},
	{"Link", []string{"</a.css>; rel=preload", "</b.js>; rel=preload"}},
}

// blockHandler answers every request with fields and a body of n bytes: by the header map
// when byMap, else in a header block built once; extra is set in the map either way, as a
// layer in front of the handler would set it. short leaves the body one byte short of n.
func blockHandler(t *testing.T, byMap bool, fields []blockField, extra http.Header, status, n int, short bool) http.Handler {
	var hb h1.HeaderBlock
	for _, f := range fields {
		if err := hb.Add(f.name, f.values...); err != nil {
			t.Fatal(err)
		}
	}
	body := randomBytes(9, n)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for k, vv := range extra {
			w.Header()[k] = vv
		}
		if byMap {
			for _, f := range fields {
				w.Header()[f.name] = f.values
			}
			w.Header().Set("Content-Length", strconv.Itoa(n))
			w.WriteHeader(status)
		} else {
			w.(h1.HeaderBlockWriter).WriteHeaderBlock(status, &hb, int64(n))
		}
		if short {
			w.Write(body[:n-1])
			return
		}
		w.Write(body)
	})
}

// rawResponse is the header section of a response as it came, its lines sorted, Date's value
// blanked, and the body read by its framing.
type rawResponse struct {
	lines  []string
	body   []byte
	closed bool // the connection ended after the response
}

// readRaw reads one response to method off c and, when probe is set, whether the connection
// then ends.
func readRaw(t *testing.T, c *clientConn, method string, probe bool) rawResponse {
	t.Helper()
	var r rawResponse
	clen, chunked := -1, false
	for {
		line, err := c.br.ReadString('\n')
		if err != nil {
			t.Fatalf("reading the header section: %v (so far %q)", err, r.lines)
		}
		if line == "\r\n" {
			break
		}
		if v, ok := strings.CutPrefix(line, "Date: "); ok {
			if _, err := http.ParseTime(strings.TrimSpace(v)); err != nil {
				t.Errorf("Date %q: %v", v, err)
			}
			line = "Date: -\r\n"
		}
		if v, ok := strings.CutPrefix(line, "Content-Length: "); ok {
			clen, _ = strconv.Atoi(strings.TrimSpace(v))
		}
		chunked = chunked || line == "Transfer-Encoding: chunked\r\n"
		r.lines = append(r.lines, line)
	}
	status := r.lines[0]
	slices.Sort(r.lines[1:])
	switch {
	case method == http.MethodHead, strings.Contains(status, " 304 "), strings.Contains(status, " 204 "):
	case chunked:
		t.Fatalf("chunked response %q", r.lines)
	case clen >= 0:
		r.body = make([]byte, clen)
		n, _ := io.ReadFull(c.br, r.body)
		r.body = r.body[:n]
	default:
		r.body, _ = io.ReadAll(c.br)
	}
	if probe {
		r.closed = !c.probeOpen()
	}
	return r
}

// Over real sockets, a response whose fields come in a header block has the same status line,
// fields (values included, rewritten as the header map's path rewrites them), framing and
// connection handling as the same response by the header map, for each shape of request.
func TestHeaderBlockMatchesMap(t *testing.T) {
	t.Parallel()
	untyped := slices.DeleteFunc(slices.Clone(blockFields), func(f blockField) bool { return f.name == "Content-Type" })
	requests := []struct {
		name, raw string
		closes    bool
	}{
		{"GET", "GET /f HTTP/1.1\r\nHost: example.com\r\n\r\n", false},
		{"HEAD", "HEAD /f HTTP/1.1\r\nHost: example.com\r\n\r\n", false},
		{"GET close", "GET /f HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n", true},
		{"GET HTTP/1.0", "GET /f HTTP/1.0\r\n\r\n", true},
		{"GET HTTP/1.0 keep-alive", "GET /f HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", false},
	}
	handlers := []struct {
		name   string
		fields []blockField
		extra  http.Header
		status int
		n      int
		short  bool
	}{
		{name: "page", fields: blockFields, status: 200, n: 1024},
		{name: "large body", fields: blockFields, status: 200, n: 40 << 10},
		{name: "empty body", fields: blockFields, status: 200, n: 0},
		{name: "type sniffed", fields: untyped, status: 200, n: 512},
		{name: "encoded, not sniffed", fields: append(slices.Clone(untyped), blockField{"Content-Encoding", []string{"gzip"}}), status: 200, n: 512},
		{name: "fields set in front", fields: blockFields, status: 200, n: 100,
			extra: http.Header{"X-Content-Type-Options": {"nosniff"}, "Strict-Transport-Security": {"max-age=60"}}},
		{name: "Date set in front", fields: blockFields, status: 200, n: 10, extra: http.Header{"Date": {"Sun, 01 Mar 2026 12:00:00 GMT"}}},
		{name: "close set in front", fields: blockFields, status: 200, n: 10, extra: http.Header{"Connection": {"close"}}},
		{name: "body cut short", fields: blockFields, status: 200, n: 100, short: true},
		{name: "404", fields: blockFields, status: 404, n: 100},
		{name: "304", fields: untyped, status: 304, n: 100},
	}
	for _, hc := range handlers {
		byMap := startH1(t, blockHandler(t, true, hc.fields, hc.extra, hc.status, hc.n, hc.short), nil)
		byBlock := startH1(t, blockHandler(t, false, hc.fields, hc.extra, hc.status, hc.n, hc.short), nil)
		for _, rq := range requests {
			t.Run(hc.name+"/"+rq.name, func(t *testing.T) {
				var got [2]rawResponse
				for i, addr := range []string{byMap, byBlock} {
					c := dial(t, addr)
					c.send(rq.raw)
					got[i] = readRaw(t, c, methodOf(rq.raw), true)
				}
				if !slices.Equal(got[0].lines, got[1].lines) {
					t.Errorf("header sections differ:\nmap:   %q\nblock: %q", got[0].lines, got[1].lines)
				}
				if string(got[0].body) != string(got[1].body) || got[0].closed != got[1].closed {
					t.Errorf("map: %d body bytes, closed %v; block: %d, closed %v",
						len(got[0].body), got[0].closed, len(got[1].body), got[1].closed)
				}
				if hc.status == 200 && !hc.short && hc.extra["Connection"] == nil && got[1].closed != rq.closes {
					t.Errorf("connection closed: %v, want %v", got[1].closed, rq.closes)
				}
			})
		}
	}
}

// Pipelined requests answered with header blocks get their responses whole and in order, on
// one connection that stays open.
func TestHeaderBlockPipelined(t *testing.T) {
	t.Parallel()
	addr := startH1(t, blockHandler(t, false, blockFields, nil, 200, 700, false), nil)
	c := dial(t, addr)
	const n = 20
	c.send(strings.Repeat(get("/f"), n))
	for i := range n {
		r := c.readOK(http.MethodGet)
		if len(r.body) != 700 || r.resp.Header.Get("Etag") != `"0123456789abcdef"` || r.resp.Header.Get("X-Split") != "one  X-Injected: two" {
			t.Fatalf("response %d: %d bytes, header %v", i, len(r.body), r.resp.Header)
		}
		if _, ok := r.resp.Header["X-Injected"]; ok {
			t.Fatalf("response %d: a line break in a value split the field", i)
		}
	}
	if !c.probeOpen() {
		t.Error("connection closed after pipelined responses")
	}
}

// A body sent from a file (io.Copy, sendfile) after a header block arrives whole, with the
// block's fields.
func TestHeaderBlockFileBody(t *testing.T) {
	t.Parallel()
	body := randomBytes(4, 200<<10)
	path := writeTempFile(t, body)
	var hb h1.HeaderBlock
	if err := hb.Add("Content-Type", "application/octet-stream"); err != nil {
		t.Fatal(err)
	}
	addr := startH1(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, err := os.Open(path)
		if err != nil {
			t.Error(err)
			return
		}
		defer f.Close()
		w.(h1.HeaderBlockWriter).WriteHeaderBlock(http.StatusOK, &hb, int64(len(body)))
		io.Copy(w, f)
	}), nil)
	c := dial(t, addr)
	for range 2 {
		c.send(get("/f"))
		r := c.readOK(http.MethodGet)
		if sha256Hex(r.body) != sha256Hex(body) || r.resp.ContentLength != int64(len(body)) ||
			r.resp.Header.Get("Content-Type") != "application/octet-stream" {
			t.Fatalf("got %d bytes, length %d, header %v", len(r.body), r.resp.ContentLength, r.resp.Header)
		}
	}
}

// A second status after WriteHeaderBlock is ignored, as after WriteHeader; a 1xx status goes
// out without the block and the final status carries it.
func TestHeaderBlockStatusOnce(t *testing.T) {
	t.Parallel()
	var hb h1.HeaderBlock
	hb.Add("Content-Type", "text/plain")
	addr := startH1(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		bw := w.(h1.HeaderBlockWriter)
		w.Header().Set("Link", "</a.css>; rel=preload")
		bw.WriteHeaderBlock(http.StatusEarlyHints, &hb, 2)
		bw.WriteHeaderBlock(http.StatusOK, &hb, 2)
		w.WriteHeader(http.StatusTeapot)
		bw.WriteHeaderBlock(http.StatusNotFound, &hb, 5)
		io.WriteString(w, "ok")
	}), nil)
	c := dial(t, addr)
	c.send(get("/f"))
	interim, r := c.readFinal(http.MethodGet)
	if len(interim) != 1 || interim[0].StatusCode != http.StatusEarlyHints || interim[0].Header.Get("Content-Type") != "" {
		t.Errorf("interim responses: %v", interim)
	}
	if r.resp.StatusCode != http.StatusOK || string(r.body) != "ok" || r.resp.Header.Get("Content-Type") != "text/plain" {
		t.Errorf("got %s %q, header %v", r.resp.Status, r.body, r.resp.Header)
	}
}

func TestHeaderBlockAdd(t *testing.T) {
	t.Parallel()
	var hb h1.HeaderBlock
	if hb.Len() != 0 || hb.Has("Content-Type") {
		t.Fatal("the zero block is not empty")
	}
	for _, name := range []string{"Content-Length", "transfer-encoding", "Connection", "Date", "Keep-Alive",
		"Proxy-Connection", "TE", "Upgrade", "Trailer", "Trailer:X", "bad name", "", "X-Ü"} {
		if err := hb.Add(name, "v"); !errors.Is(err, h1.ErrBlockField) {
			t.Errorf("Add(%q): %v, want ErrBlockField", name, err)
		}
	}
	if hb.Len() != 0 {
		t.Fatalf("refused fields added %d bytes", hb.Len())
	}
	if err := hb.Add("etag", `"x"`); err != nil {
		t.Fatal(err)
	}
	if err := hb.Add("Vary", "Accept-Encoding", "Origin"); err != nil {
		t.Fatal(err)
	}
	want := "Etag: \"x\"\r\nVary: Accept-Encoding\r\nVary: Origin\r\n"
	if hb.Len() != len(want) || !hb.Has("ETag") || !hb.Has("vary") || hb.Has("Content-Type") {
		t.Errorf("block of %d bytes (want %d), Has wrong", hb.Len(), len(want))
	}
	// What a client reads back: the lines as added.
	addr := startH1(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.(h1.HeaderBlockWriter).WriteHeaderBlock(http.StatusOK, &hb, 0)
	}), nil)
	c := dial(t, addr)
	c.send(get("/f"))
	resp := readRaw(t, c, http.MethodGet, false)
	got := fmt.Sprint(resp.lines)
	for _, line := range strings.SplitAfter(want, "\r\n")[:3] {
		if !slices.Contains(resp.lines, line) {
			t.Errorf("%q missing from %s", line, got)
		}
	}
}
