package h2

import (
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strconv"
	"testing"

	"github.com/dt-cdn/dt/internal/testkit/testcert"
)

// BenchmarkSmallResponses loads a 1 KiB response over HTTP/2 with Go's client, 10 streams at a
// time on one connection, from this package's server and from net/http's own, side by side:
//
//	go test -run '^$' -bench SmallResponses -cpu 2 ./internal/h2/
//
// The client runs in the same process and costs more than either server, so the ratio
// understates the difference; scripts/bench-edge.sh measures with h2load against nginx.
func BenchmarkSmallResponses(b *testing.B) {
	body := pattern(1024)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.Write(body)
	})
	for _, name := range []string{"h2", "net-http"} {
		b.Run(name, func(b *testing.B) {
			var addr string
			var client *http.Client
			if name == "h2" {
				ts := startServer(b, h, nil)
				addr, client = ts.addr, ts.client()
			} else {
				addr, client = startStdServer(b, h)
			}
			url := "https://" + addr + "/"
			b.SetBytes(int64(len(body)))
			b.SetParallelism(5) // × GOMAXPROCS goroutines: 10 streams at a time with -cpu 2
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					resp, err := client.Get(url)
					if err != nil {
						b.Error(err)
						return
					}
					n, _ := io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if n != int64(len(body)) {
						b.Errorf("%d bytes", n)
						return
					}
				}
			})
		})
	}
}

// startStdServer serves h over TLS with net/http's own HTTP/2 server, for comparison.
func startStdServer(b *testing.B, h http.Handler) (string, *http.Client) {
	cert, pool := testcert.SelfSigned(b)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	hs := &http.Server{Handler: h, TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}}}
	go hs.ServeTLS(ln, "", "")
	b.Cleanup(func() { hs.Close() })
	ts := &testServer{addr: ln.Addr().String(), pool: pool}
	return ts.addr, ts.client()
}
