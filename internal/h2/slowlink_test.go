package h2

import (
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptrace"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/dt-cdn/dt/internal/testkit/faultnet"
)

// Over a slow link, a large download on one stream does not hold up small responses on the
// same connection: the download leaves the reading goroutine, and the small responses' frames
// go out between its writes, queued behind what the kernel already holds but not behind the
// rest of the download.
func TestSlowLinkSmallResponsesPassLargeDownload(t *testing.T) {
	const chunk = 64 << 10
	const bigSize = 768 * chunk // 48 MiB: far more than the kernel buffers on the way hold
	block := pattern(chunk)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/big" {
			w.Header().Set("Content-Length", "1024")
			w.Write(block[:1024])
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(bigSize))
		for range bigSize / chunk {
			if _, err := w.Write(block); err != nil {
				return
			}
		}
	})
	ts := startServer(t, h, nil)
	proxy, err := faultnet.New("127.0.0.1:0", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	proxy.SetBandwidth(16 << 20)

	var p http.Protocols
	p.SetHTTP2(true)
	// Windows larger than the download: flow control never stops it, so only InlineLimit can
	// take it off the reading goroutine.
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ts.pool, ServerName: "127.0.0.1"}, Protocols: &p, DisableCompression: true,
		HTTP2: &http.HTTP2Config{MaxReceiveBufferPerConnection: 2 * bigSize, MaxReceiveBufferPerStream: 2 * bigSize}}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	base := "https://" + proxy.Addr()

	resp, err := client.Get(base + "/big")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if _, err := io.CopyN(io.Discard, resp.Body, 1<<20); err != nil {
		t.Fatal(err)
	}
	var bigDone atomic.Bool
	bigErr := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, resp.Body)
		bigDone.Store(true)
		bigErr <- err
	}()

	for i := range 3 {
		reused := false
		trace := &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) { reused = info.Reused }}
		req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(t.Context(), trace), "GET", base+"/small", nil)
		small, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(small.Body)
		small.Body.Close()
		if err != nil || len(body) != 1024 {
			t.Fatalf("small %d: %d bytes, %v", i, len(body), err)
		}
		if !reused {
			t.Fatalf("small %d went over a new connection; the test needs the download's", i)
		}
		if bigDone.Load() {
			t.Fatalf("small %d completed only after the %d MiB download", i, bigSize>>20)
		}
	}
	if err := <-bigErr; err != nil {
		t.Fatalf("download: %v", err)
	}
}
