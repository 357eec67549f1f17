package static

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// FuzzRange checks parseRange's promises for any field value and size, and serves the field
// through the handler: the answer is 200 with the whole file, 206 with exactly the bytes its
// Content-Range names (or parts that do), or 416.
func FuzzRange(f *testing.F) {
	for _, s := range []string{
		"bytes=0-9", "bytes=-10", "bytes=10-", "bytes=0-0,-1", "bytes=abc", "bytes=5-1", "bytes=-0",
		"bytes=0-,0-,0-", "bytes=" + manyRanges(40), "BYTES=1-2", "items=0-1", "bytes=", "bytes=,,",
		"bytes= 1-2 , 4-5 ", "bytes=99999999999999999999-", "bytes=-99999999999999999999",
		"bytes=0-99999999999999999999", "bytes=1-2,3", "bytes=--1", "bytes=1--2", "bytes=0-0,0-0",
	} {
		f.Add(s, int64(1000))
		f.Add(s, int64(0))
	}
	d := newDeploy(f, map[string]*testFile{
		"/f.bin": {body: randomBytes(9, 70_000), typ: "application/octet-stream", chunkAt: []int{30_000}},
	}, nil, SiteOptions{})
	content := d.files["/f.bin"].body
	h := NewHandler(HandlerConfig{})
	h.SetSite(d.site)
	contentRange := regexp.MustCompile(`^bytes (\d+)-(\d+)/70000$`)

	f.Fuzz(func(t *testing.T, s string, size int64) {
		if size < 0 {
			size = -(size + 1)
		}
		ranges, res := parseRange(s, size)
		switch res {
		case rangePartial:
			if len(ranges) == 0 || len(ranges) > maxRanges {
				t.Fatalf("%q: %d ranges", s, len(ranges))
			}
			var total int64
			var specs []string
			for _, r := range ranges {
				if r.start < 0 || r.length < 1 || r.start+r.length > size || r.start+r.length < r.start {
					t.Fatalf("%q size %d: range %+v out of bounds", s, size, r)
				}
				total += r.length
				specs = append(specs, fmt.Sprintf("%d-%d", r.start, r.start+r.length-1))
			}
			if total > size {
				t.Fatalf("%q: ranges add up to %d > %d", s, total, size)
			}
			// Round trip: the ranges written back parse to themselves.
			again, res2 := parseRange("bytes="+strings.Join(specs, ","), size)
			if res2 != rangePartial || fmt.Sprint(again) != fmt.Sprint(ranges) {
				t.Fatalf("%q: %v does not round-trip: %v %v", s, ranges, again, res2)
			}
		default:
			if ranges != nil {
				t.Fatalf("%q: result %d with ranges %v", s, res, ranges)
			}
		}

		req := httptest.NewRequest("GET", "/f.bin", nil)
		req.Header.Set("Range", s)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		body := rec.Body.Bytes()
		switch rec.Code {
		case 200:
			if !bytes.Equal(body, content) {
				t.Fatalf("%q: 200 with %d bytes", s, len(body))
			}
		case 416:
			if got := rec.Header().Get("Content-Range"); got != "bytes */70000" {
				t.Fatalf("%q: 416 with Content-Range %q", s, got)
			}
		case 206:
			if m := contentRange.FindStringSubmatch(rec.Header().Get("Content-Range")); m != nil {
				first, _ := strconv.Atoi(m[1])
				last, _ := strconv.Atoi(m[2])
				if !bytes.Equal(body, content[first:last+1]) {
					t.Fatalf("%q: 206 body is not bytes %d-%d", s, first, last)
				}
				return
			}
			checkParts(t, s, rec, content)
		default:
			t.Fatalf("%q: status %d", s, rec.Code)
		}
	})
}

func checkParts(t *testing.T, s string, rec *httptest.ResponseRecorder, content []byte) {
	t.Helper()
	_, params, err := mime.ParseMediaType(rec.Header().Get("Content-Type"))
	if err != nil {
		t.Fatalf("%q: 206 with Content-Type %q", s, rec.Header().Get("Content-Type"))
	}
	if cl := rec.Header().Get("Content-Length"); cl != strconv.Itoa(rec.Body.Len()) {
		t.Fatalf("%q: Content-Length %s for %d bytes", s, cl, rec.Body.Len())
	}
	mr := multipart.NewReader(bytes.NewReader(rec.Body.Bytes()), params["boundary"])
	for n := 0; ; n++ {
		p, err := mr.NextPart()
		if err == io.EOF {
			if n < 2 {
				t.Fatalf("%q: multipart with %d parts", s, n)
			}
			return
		}
		if err != nil {
			t.Fatalf("%q: part %d: %v", s, n, err)
		}
		var first, last, size int64
		if _, err := fmt.Sscanf(p.Header.Get("Content-Range"), "bytes %d-%d/%d", &first, &last, &size); err != nil || size != int64(len(content)) {
			t.Fatalf("%q: part %d Content-Range %q", s, n, p.Header.Get("Content-Range"))
		}
		b, _ := io.ReadAll(p)
		if !bytes.Equal(b, content[first:last+1]) {
			t.Fatalf("%q: part %d is not bytes %d-%d", s, n, first, last)
		}
	}
}

// FuzzAcceptEncoding checks that the representation chosen for any Accept-Encoding field is
// one the client accepts, with no other available one weighted higher, and that 406 comes
// only when the client accepts nothing available.
func FuzzAcceptEncoding(f *testing.F) {
	for _, s := range []string{
		"", "gzip", "gzip, deflate, br, zstd", "br;q=0.5, gzip;q=0.8", "*", "*;q=0", "identity;q=0",
		"gzip;q=0", "gzip, identity;q=0", "GZIP;Q=1", "x-gzip", "br;q=1.5", "gzip;q=abc", ",,,",
		"identity;q=0.9, gzip;q=0.5", "gzip;q=0.001", "*;q=0, identity", "br;q=1.000, zstd;q=0.999",
		"gzip ; q = 0.5", "gzip;level=1;q=0.2", "compress, snappy",
	} {
		f.Add(s, uint8(7))
		f.Add(s, uint8(0))
	}
	f.Fuzz(func(t *testing.T, s string, mask uint8) {
		var reps [numCodings]*rep
		for c := identity; c < numCodings; c++ {
			if c == identity || mask&(1<<c) != 0 {
				reps[c] = &rep{coding: c}
			}
		}
		ae := parseAcceptEncoding([]string{s})
		for c, q := range ae.q {
			if q != notListed && (q < 0 || q > 1000) {
				t.Fatalf("%q: weight %d for coding %d", s, q, c)
			}
		}
		weightOf := func(c coding) int16 {
			if c == identity {
				return ae.identityWeight()
			}
			return ae.weightOf(c)
		}
		r, ok := ae.choose(&reps)
		if !ok {
			for c, rp := range reps {
				if rp != nil && weightOf(coding(c)) > 0 {
					t.Fatalf("%q: 406 though %v is acceptable", s, coding(c))
				}
			}
			return
		}
		if r == nil || weightOf(r.coding) <= 0 {
			t.Fatalf("%q: chose %v, which is not acceptable", s, r)
		}
		for c, rp := range reps {
			if rp != nil && weightOf(coding(c)) > weightOf(r.coding) {
				t.Fatalf("%q: chose %v over the preferred %v", s, r.coding, coding(c))
			}
		}
	})
}

// FuzzRequestPath sends any request target to the main test deploy: never a 5xx, and never a
// body that is not a file of the site (or an error text): no hidden file, nothing from disk
// outside the manifest.
func FuzzRequestPath(f *testing.F) {
	for _, s := range []string{
		"/", "/about", "/about.html", "/docs", "/docs/", "/%2e%2e/etc/passwd", "/docs/%2e%2e/about",
		"/a%2Fb", "//double", "/.env", "/.git/config", "/%2eenv", "/dir/.hidden/x.txt", "/%00",
		"/a%5Cb", "/go//evil.example", "/app/x", "/ext/a?b", "/.well-known/security.txt", "/%ff",
		"http://x/about", "*", "/../../../etc/passwd", "/docs/./guide", "/%2e", "/.", "/..",
	} {
		f.Add(s)
	}
	files := mainFiles()
	d := newDeploy(f, files, mainRules, SiteOptions{})
	h := NewHandler(HandlerConfig{})
	h.SetSite(d.site)
	allowed := map[string]bool{"": true}
	for p, tf := range files {
		if !hiddenPath(p) {
			allowed[string(tf.body)] = true
		}
	}
	for _, status := range []int{400, 404, 405, 406, 410, 412, 416, 451} {
		allowed[string(newErrorResponse(status).body)] = true
	}
	f.Fuzz(func(t *testing.T, target string) {
		req, err := http.ReadRequest(bufio.NewReader(strings.NewReader("GET " + target + " HTTP/1.1\r\nHost: x\r\n\r\n")))
		if err != nil {
			return // net/http would have refused it before any handler
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%q: status %d", target, rec.Code)
		}
		if !allowed[rec.Body.String()] {
			t.Fatalf("%q: status %d with a body that is no file of the site: %.80q", target, rec.Code, rec.Body.String())
		}
		if loc := rec.Header().Get("Location"); strings.HasPrefix(loc, "//") || strings.ContainsAny(loc, "\r\n") {
			t.Fatalf("%q: Location %q", target, loc)
		}
	})
}

// TestNoAllocs pins the allocation-free parsers of the request path.
func TestNoAllocs(t *testing.T) {
	lines := []string{"gzip, deflate, br, zstd;q=0.9, identity;q=0.1"}
	inm := http.Header{"If-None-Match": {`W/"a", "b", "c"`}}
	v := validators{etag: `"c"`}
	req := httptest.NewRequest("GET", "/docs/guide", nil)
	for name, fn := range map[string]func(){
		"parseAcceptEncoding": func() { parseAcceptEncoding(lines) },
		"checkPreconditions":  func() { checkPreconditions(inm, v) },
		"requestPath":         func() { requestPath(req.URL) },
	} {
		if n := testing.AllocsPerRun(100, fn); n != 0 {
			t.Errorf("%s: %v allocations per call", name, n)
		}
	}
}
