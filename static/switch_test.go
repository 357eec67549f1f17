package static

import (
	"crypto/sha256"
	"crypto/tls"
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
	owner := map[string]ownedRep{}
	for name, d := range map[string]*deploy{"a": a, "b": b} {
		for _, f := range d.files {
			owner[etagOf(f.body)] = ownedRep{name, f.body}
			for _, v := range f.variants {
				owner[etagOf(v)] = ownedRep{name, v}
			}
		}
	}
	for name, start := range map[string]func(testing.TB, *Handler) *testServer{"HTTP/1.1": startServer, "HTTP/1.1 net/http": startStdServer} {
		t.Run(name, func(t *testing.T) {
			h := NewHandler(HandlerConfig{})
			h.SetSite(a.site)
			srv := start(t, h)
			client := srv.Client()
			client.Transport.(*http.Transport).DisableCompression = true // the test checks encoded bytes
			switchUnderLoad(t, h, srv.URL, client, a.site, b.site, owner)
		})
	}
	t.Run("HTTP/2", func(t *testing.T) {
		h := NewHandler(HandlerConfig{})
		h.SetSite(a.site)
		addr, pool := serveTLS(t, h)
		var p http.Protocols
		p.SetHTTP2(true)
		client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, Protocols: &p, DisableCompression: true}}
		t.Cleanup(client.CloseIdleConnections)
		switchUnderLoad(t, h, "https://"+addr, client, a.site, b.site, owner)
	})
}

// switchUnderLoad runs the workers of TestSwitchUnderLoad against h, serving site a, at url.
func switchUnderLoad(t *testing.T, h *Handler, url string, client *http.Client, a, b *Site, owner map[string]ownedRep) {

	// The switcher flips the deploy whenever a worker asks, and acknowledges the flip.
	flip := make(chan chan struct{})
	done := make(chan struct{})
	var switches int
	go func() {
		sites := []*Site{b, a}
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
				req, _ := http.NewRequest("GET", url+path, nil)
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

// ownedRep is the deploy a representation belongs to, and its bytes.
type ownedRep struct {
	deploy string
	body   []byte
}

func hashOf(b []byte) []byte {
	s := sha256.Sum256(b)
	return s[:]
}
