package static

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dt-cdn/dt/blobs"
	"github.com/dt-cdn/dt/internal/testkit/procusage"
)

// sendfileFiles are files of every size the sending paths tell apart: small ones written from
// memory, mid-sized ones held in memory and sent by sendfile, large ones on disk; some with a
// gzip variant, some in chunks (several blobs).
func sendfileFiles(n int) map[string]*testFile {
	sizes := []int{1 << 10, 20 << 10, 40 << 10, 56 << 10, 70 << 10, 100 << 10, 300 << 10, 600 << 10}
	files := map[string]*testFile{}
	for i := range n {
		size := sizes[i%len(sizes)] + i*37
		tf := &testFile{body: randomBytes(uint64(i), size), typ: "application/octet-stream"}
		if i%3 == 0 {
			tf.body, tf.typ, tf.codings = jsSource(size), "text/javascript", []string{"gzip"}
		}
		if i%5 == 4 {
			tf.chunkAt = []int{size / 3, size / 2}
		}
		files[fmt.Sprintf("/f%d", i)] = tf
	}
	return files
}

// fetch gets path with an Accept-Encoding and a Range (either may be empty) and checks the
// status and that the body hashes as want does.
func fetch(c *http.Client, url, accept, rng string, wantStatus int, want []byte) error {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept-Encoding", accept) // set, so that the client does not decompress
	if rng != "" {
		req.Header.Set("Range", rng)
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("%s %s: %w", url, rng, err)
	}
	if resp.StatusCode != wantStatus || blobs.Sum(body) != blobs.Sum(want) {
		return fmt.Errorf("%s (%q, %q): status %d, %d bytes; want %d, %d bytes of the expected content",
			url, accept, rng, resp.StatusCode, len(body), wantStatus, len(want))
	}
	return nil
}

// Many clients download many files at once, whole, gzipped and in ranges, through a cache of
// four open files: every body is the file's, byte for byte; the cache hits, misses and evicts,
// keeps no more than four files open, and once closed leaves the process's descriptors as they
// were.
func TestSendfileManyDownloads(t *testing.T) {
	const clients, requests, openFiles = 12, 40, 4
	d := newDeploy(t, sendfileFiles(24), nil, SiteOptions{})
	before := procusage.Now(t)
	h := NewHandler(HandlerConfig{OpenFiles: openFiles})
	h.SetSite(d.site)
	srv := startServer(t, h)
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	transports := make([]*http.Transport, clients)
	for i := range clients {
		transports[i] = &http.Transport{}
		c := &http.Client{Transport: transports[i]}
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(i), 9))
			for range requests {
				p := fmt.Sprintf("/f%d", r.IntN(len(d.files)))
				tf := d.files[p]
				var err error
				switch r.IntN(3) {
				case 0:
					err = fetch(c, srv.URL+p, "identity", "", http.StatusOK, tf.body)
				case 1:
					want := tf.body
					if v, ok := tf.variants["gzip"]; ok {
						want = v
					}
					err = fetch(c, srv.URL+p, "gzip", "", http.StatusOK, want)
				default:
					a := r.IntN(len(tf.body))
					b := a + r.IntN(len(tf.body)-a)
					err = fetch(c, srv.URL+p, "identity", fmt.Sprintf("bytes=%d-%d", a, b), http.StatusPartialContent, tf.body[a:b+1])
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	s := h.OpenFiles()
	if s.Hits.Load() == 0 || s.Misses.Load() == 0 || s.Evicted.Load() == 0 {
		t.Errorf("hits %d, misses %d, evicted %d: want each counted", s.Hits.Load(), s.Misses.Load(), s.Evicted.Load())
	}
	if s.Open.Load() > openFiles {
		t.Errorf("%d files open after the downloads, bound %d", s.Open.Load(), openFiles)
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	for _, tr := range transports {
		tr.CloseIdleConnections()
	}
	// What may remain is the server's listener and goroutines, never a blob file.
	procusage.Settle(t, before, 4, time.Minute, func() error {
		if n := s.Open.Load(); n != 0 {
			return fmt.Errorf("%d blob files open after Close", n)
		}
		return nil
	})
}

// blobPath returns the file a store holds a blob in.
func blobPath(t *testing.T, st *blobs.Store, h blobs.Hash) string {
	t.Helper()
	f, err := st.Open(h)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return f.Name()
}

// A blob removed from the store while its file is kept open still serves; a handler that
// keeps none answers 500, before sending anything of the response, or sends the file from
// memory when it is held there.
func TestSendfileRemovedBlob(t *testing.T) {
	files := map[string]*testFile{
		"/big.bin": {body: randomBytes(5, 200<<10), typ: "application/octet-stream"},
		"/mid.bin": {body: randomBytes(8, 56<<10), typ: "application/octet-stream"},
	}
	d := newDeploy(t, files, nil, SiteOptions{})
	h := NewHandler(HandlerConfig{})
	h.SetSite(d.site)
	srv := startServer(t, h)
	c := srv.Client()
	body := files["/big.bin"].body
	if err := fetch(c, srv.URL+"/big.bin", "identity", "", http.StatusOK, body); err != nil {
		t.Fatal(err)
	}
	if err := d.store.Delete(blobs.Sum(body)); err != nil {
		t.Fatal(err)
	}
	if err := fetch(c, srv.URL+"/big.bin", "identity", "", http.StatusOK, body); err != nil {
		t.Fatalf("after the blob's removal: %v", err)
	}
	if err := fetch(c, srv.URL+"/big.bin", "identity", "bytes=100-", http.StatusPartialContent, body[100:]); err != nil {
		t.Fatalf("a range after the blob's removal: %v", err)
	}
	uncached := NewHandler(HandlerConfig{OpenFiles: -1})
	uncached.SetSite(d.site)
	srv2 := startServer(t, uncached)
	if r := do(t, srv2, http.MethodGet, "/big.bin"); r.status != http.StatusInternalServerError {
		t.Fatalf("removed blob, no open files: status %d, want 500", r.status)
	}
	mid := files["/mid.bin"].body
	if err := d.store.Delete(blobs.Sum(mid)); err != nil {
		t.Fatal(err)
	}
	c2 := srv2.Client()
	if err := fetch(c2, srv2.URL+"/mid.bin", "identity", "", http.StatusOK, mid); err != nil {
		t.Fatalf("removed blob held in memory: %v", err)
	}
	if err := fetch(c2, srv2.URL+"/mid.bin", "identity", "bytes=10-20000", http.StatusPartialContent, mid[10:20001]); err != nil {
		t.Fatalf("a range of a removed blob held in memory: %v", err)
	}
}

// A blob shorter than the manifest says is answered 500 when it is opened so, and cuts the
// connection short when it shrank while kept open (the response's header is gone by then).
func TestSendfileShortBlob(t *testing.T) {
	files := map[string]*testFile{
		"/a.bin": {body: randomBytes(6, 100<<10), typ: "application/octet-stream"},
		"/b.bin": {body: randomBytes(7, 100<<10), typ: "application/octet-stream"},
	}
	d := newDeploy(t, files, nil, SiteOptions{})
	h := NewHandler(HandlerConfig{})
	h.SetSite(d.site)
	srv := startServer(t, h)
	c := srv.Client()
	if err := os.Truncate(blobPath(t, d.store, blobs.Sum(files["/a.bin"].body)), 50<<10); err != nil {
		t.Fatal(err)
	}
	if r := do(t, srv, http.MethodGet, "/a.bin"); r.status != http.StatusInternalServerError {
		t.Fatalf("short blob: status %d, want 500", r.status)
	}
	b := files["/b.bin"].body
	if err := fetch(c, srv.URL+"/b.bin", "identity", "", http.StatusOK, b); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(blobPath(t, d.store, blobs.Sum(b)), 50<<10); err != nil {
		t.Fatal(err)
	}
	err := fetch(c, srv.URL+"/b.bin", "identity", "", http.StatusOK, b)
	if err == nil || !errorsIsUnexpectedEOF(err) {
		t.Fatalf("blob shrunk while open: %v, want the body cut short", err)
	}
}

func errorsIsUnexpectedEOF(err error) bool { return errors.Is(err, io.ErrUnexpectedEOF) }

// BenchmarkSendfileCrossover measures a keep-alive HTTP/1.1 request for a file held in memory
// over loopback (package h1, client included), its body sent by writev from memory or by
// sendfile from the blob file kept open, at the sizes around DefaultSendfileMin. Besides
// ns/op it reports the process's CPU time per request (cpu-ns/op): the client's share is the
// same for both ways.
func BenchmarkSendfileCrossover(b *testing.B) {
	sizes := []int{4 << 10, 8 << 10, 16 << 10, 26 << 10, 48 << 10}
	files := map[string]*testFile{}
	for _, n := range sizes {
		files[fmt.Sprintf("/%d.bin", n)] = &testFile{body: randomBytes(uint64(n), n), typ: "application/octet-stream"}
	}
	d := newDeploy(b, files, nil, SiteOptions{})
	for _, n := range sizes {
		for _, way := range []struct {
			name string
			min  int64
		}{{"writev", -1}, {"sendfile", 1}} {
			b.Run(fmt.Sprintf("%dKiB/%s", n>>10, way.name), func(b *testing.B) {
				h := NewHandler(HandlerConfig{SendfileMin: way.min})
				h.SetSite(d.site)
				benchmarkRaw(b, startServer(b, h), fmt.Sprintf("/%d.bin", n))
			})
		}
	}
}

// benchmarkRaw sends GET path with the header lines given on one connection, over and over,
// reading each response whole. Every response has the same length (Date always has 29
// characters): the first one's.
func benchmarkRaw(b *testing.B, srv *testServer, path string, lines ...string) {
	conn, err := net.Dial("tcp", srv.Addr)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	head := "GET " + path + " HTTP/1.1\r\nHost: edge.test\r\n"
	for _, l := range lines {
		head += l + "\r\n"
	}
	req := []byte(head + "\r\n")
	br := bufio.NewReaderSize(conn, 64<<10)
	if _, err := conn.Write(req); err != nil {
		b.Fatal(err)
	}
	size, clen := 0, 0
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			b.Fatal(err)
		}
		if size == 0 && !strings.HasPrefix(line, "HTTP/1.1 200 ") {
			b.Fatalf("response %q", line)
		}
		size += len(line)
		if v, ok := strings.CutPrefix(line, "Content-Length: "); ok {
			clen, _ = strconv.Atoi(strings.TrimSpace(v))
		}
		if line == "\r\n" {
			break
		}
	}
	if _, err := br.Discard(clen); err != nil {
		b.Fatal(err)
	}
	size += clen
	b.ReportAllocs()
	var ru0, ru1 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	for b.Loop() {
		if _, err := conn.Write(req); err != nil {
			b.Fatal(err)
		}
		if _, err := br.Discard(size); err != nil {
			b.Fatal(err)
		}
	}
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	cpu := (ru1.Utime.Nano() + ru1.Stime.Nano()) - (ru0.Utime.Nano() + ru0.Stime.Nano())
	b.ReportMetric(float64(cpu)/float64(b.N), "cpu-ns/op")
	b.SetBytes(int64(clen))
}

// Pipelined requests for files sent by sendfile and from memory get their responses in order,
// each whole: the responses gathered before a file's header leave with it.
func TestSendfilePipelined(t *testing.T) {
	files := map[string]*testFile{
		"/big.bin":   {body: randomBytes(11, 150<<10), typ: "application/octet-stream"},
		"/mid.bin":   {body: randomBytes(12, 56<<10), typ: "application/octet-stream"},
		"/small.txt": {body: []byte("small"), typ: "text/plain"},
	}
	d := newDeploy(t, files, nil, SiteOptions{})
	h := NewHandler(HandlerConfig{})
	h.SetSite(d.site)
	srv := startServer(t, h)
	conn, err := net.Dial("tcp", srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(time.Minute))
	order := []string{"/small.txt", "/big.bin", "/small.txt", "/mid.bin", "/big.bin", "/small.txt"}
	var reqs strings.Builder
	for _, p := range order {
		fmt.Fprintf(&reqs, "GET %s HTTP/1.1\r\nHost: edge.test\r\n\r\n", p)
	}
	if _, err := io.WriteString(conn, reqs.String()); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	for i, p := range order {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("response %d (%s): %v", i, p, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK || blobs.Sum(body) != blobs.Sum(files[p].body) {
			t.Fatalf("response %d (%s): status %d, %d bytes, %v", i, p, resp.StatusCode, len(body), err)
		}
	}
}
