package edge

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
)

// TestSwitchUnderLoad switches deploys back and forth while requests are in flight, some of
// them paused halfway through their body until a switch has happened. Every response must be
// whole and from one deploy: its body hashes to its ETag, and that ETag is one of the deploy
// the headers came from.
func TestSwitchUnderLoad(t *testing.T) {
	mk := func(seed uint64) map[string]*testFile {
		return map[string]*testFile{
			"/index.html": {body: htmlPage(fmt.Sprint("deploy", seed), 2000), typ: "text/html; charset=utf-8", codings: []string{"gzip"}},
			"/big.bin":    {body: randomBytes(seed, 512<<10), typ: "application/octet-stream", chunkAt: []int{200 << 10}},
		}
	}
	a := newDeploy(t, mk(1), nil, SiteOptions{})
	b := newDeploy(t, mk(2), nil, SiteOptions{})
	// owner maps every ETag to its deploy and the bytes it names.
	type rep struct {
		deploy string
		body   []byte
	}
	owner := map[string]rep{}
	for name, d := range map[string]*deploy{"a": a, "b": b} {
		for _, f := range d.files {
			owner[etagOf(f.body)] = rep{name, f.body}
			for _, v := range f.variants {
				owner[etagOf(v)] = rep{name, v}
			}
		}
	}
	h := NewHandler(HandlerConfig{})
	h.SetSite(a.site)
	srv := startServer(t, h)
	client := srv.Client()
	client.Transport.(*http.Transport).DisableCompression = true // the test checks encoded bytes
	t.Cleanup(client.CloseIdleConnections)

	// The switcher flips the deploy whenever a worker asks, and acknowledges the flip.
	flip := make(chan chan struct{})
	done := make(chan struct{})
	var switches int
	go func() {
		sites := []*Site{b.site, a.site}
		for {
			select {
			case ack := <-flip:
				h.SetSite(sites[switches%2])
				switches++
				close(ack)
			case <-done:
				return
			}
		}
	}()

	const workers, perWorker = 6, 60
	var wg sync.WaitGroup
	var mu sync.Mutex
	seen := map[string]int{}
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				path, hdr := "/index.html", ""
				switch i % 4 {
				case 1:
					hdr = "gzip"
				case 2, 3:
					path = "/big.bin"
				}
				req, _ := http.NewRequest("GET", srv.URL+path, nil)
				if hdr != "" {
					req.Header.Set("Accept-Encoding", hdr)
				}
				if i%4 == 3 {
					req.Header.Set("Range", "bytes=100000-400000")
				}
				resp, err := client.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				first := make([]byte, 1024)
				n, err := io.ReadFull(resp.Body, first)
				first = first[:n]
				if err == io.ErrUnexpectedEOF || err == io.EOF {
					err = nil // a short body: nothing left to pause in
				} else if err == nil && (w+i)%2 == 0 {
					ack := make(chan struct{})
					flip <- ack // switch while this response is half sent
					<-ack
				}
				rest, err2 := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || err2 != nil {
					t.Errorf("%s: %v %v", path, err, err2)
					return
				}
				body := append(first, rest...)
				etag := resp.Header.Get("Etag")
				want, ok := owner[etag]
				if !ok {
					t.Errorf("%s: unknown ETag %s", path, etag)
					return
				}
				if resp.StatusCode == http.StatusPartialContent {
					want.body = want.body[100000:400001]
				}
				if sum := sha256.Sum256(body); hex.EncodeToString(sum[:]) != hex.EncodeToString(hashOf(want.body)) {
					t.Errorf("%s (%d): body is not the one of ETag %s (deploy %s)", path, resp.StatusCode, etag, want.deploy)
					return
				}
				mu.Lock()
				seen[want.deploy]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(done)
	if seen["a"] == 0 || seen["b"] == 0 {
		t.Errorf("responses per deploy: %v; both should have served", seen)
	}
	t.Logf("%d switches; responses per deploy: %v", switches, seen)
}

func hashOf(b []byte) []byte {
	s := sha256.Sum256(b)
	return s[:]
}
