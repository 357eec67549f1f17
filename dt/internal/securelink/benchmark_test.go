package securelink

import (
	"io"
	"net"
	"sync"
	"testing"
)

// benchTransports are the connections benchmarks run over: in-memory, to measure the package
// alone, and TCP loopback, to include the kernel.
var benchTransports = []struct {
	name string
	pair func(testing.TB) (net.Conn, net.Conn)
}{
	{"pipe", pipePair},
	{"tcp", func(t testing.TB) (net.Conn, net.Conn) { return tcpPair(t, "tcp4") }},
}

func BenchmarkHandshake(b *testing.B) {
	for _, tr := range benchTransports {
		b.Run(tr.name, func(b *testing.B) {
			ccfg, scfg := testConfig(1), testConfig(2)
			for b.Loop() {
				rawC, rawS := tr.pair(b)
				c, s := handshakePair(b.Context(), b, rawC, rawS, ccfg, scfg, nil)
				if c.err != nil || s.err != nil {
					b.Fatalf("handshake: client: %v; server: %v", c.err, s.err)
				}
				c.conn.Close()
				s.conn.Close()
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "handshakes/s")
		})
	}
}

func BenchmarkThroughput(b *testing.B) {
	for _, tr := range benchTransports {
		for _, size := range []int{1 << 10, 64 << 10} {
			name := map[int]string{1 << 10: "1KiB", 64 << 10: "64KiB"}[size]
			b.Run(tr.name+"/"+name, func(b *testing.B) {
				rawC, rawS := tr.pair(b)
				c, s := linkPair(b, rawC, rawS, nil)
				benchWrites(b, c, s, size)
			})
			// The same writes without this package, for comparison.
			b.Run(tr.name+"/"+name+"/unencrypted", func(b *testing.B) {
				rawC, rawS := tr.pair(b)
				benchWrites(b, rawC, rawS, size)
			})
		}
	}
}

// benchWrites measures writes of size bytes from w, drained by a reader on r.
func benchWrites(b *testing.B, w, r net.Conn, size int) {
	var wg sync.WaitGroup
	wg.Go(func() { io.Copy(io.Discard, r) })
	buf := make([]byte, size)
	b.SetBytes(int64(size))
	for b.Loop() {
		if _, err := w.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
	w.Close()
	wg.Wait()
}
