package httpserve

import (
	"os"
	"runtime"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/dt-cdn/dt/internal/testkit/h2test"
)

// TestMeasureH2 reports what idle HTTP/2 connections and streams stalled on a closed window
// cost an edge: descriptors, goroutines and heap+stacks (after a collection), per connection
// and per stream. Both ends of each connection are in this process, so the heap figures
// include the client's side (a TLS connection and a Framer). It only reports; DT_MEASURE=1
// runs it.
func TestMeasureH2(t *testing.T) {
	if os.Getenv("DT_MEASURE") == "" {
		t.Skip("DT_MEASURE is not set")
	}
	const size = 4 << 20
	d := newDeploy(t, map[string]*testFile{
		"/index.html": {body: []byte("<h1>a page</h1>\n"), typ: "text/html"},
		"/big.bin":    {body: randomBytes(7, size), typ: "application/octet-stream"},
	})
	s, err := newSiteServer(Config{SendTimeout: time.Minute, IdleTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	s.SetSite(d.site)
	addr, pool := serveLoopbackTLS(t, s)
	dial := func(settings ...http2.Setting) (*h2test.Conn, *http2.Framer) {
		c := h2test.Dial(t, addr, pool, settings...)
		return c, c.Framer
	}
	get := func(fr *http2.Framer, id uint32, path string) { h2test.WriteGet(fr, id, path) }
	type usage struct {
		fds, goroutines int
		heap            int64
	}
	measure := func() usage {
		time.Sleep(300 * time.Millisecond)
		runtime.GC()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		ents, _ := os.ReadDir("/proc/self/fd")
		return usage{len(ents), runtime.NumGoroutine(), int64(ms.HeapInuse + ms.StackInuse)}
	}

	// Idle connections: one request answered, then nothing.
	const idle = 200
	u0 := measure()
	var conns []*h2test.Conn
	for range idle {
		c, fr := dial()
		get(fr, 1, "/index.html")
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				t.Fatal(err)
			}
			if df, ok := f.(*http2.DataFrame); ok && df.StreamEnded() {
				break
			}
		}
		conns = append(conns, c)
	}
	u1 := measure()
	t.Logf("%d idle HTTP/2 connections: fds %+d, goroutines %+d, heap+stacks %+d KiB: %.1f KiB per connection (both ends)",
		idle, u1.fds-u0.fds, u1.goroutines-u0.goroutines, (u1.heap-u0.heap)>>10, float64(u1.heap-u0.heap)/idle/1024)
	for _, c := range conns {
		c.Close()
	}
	conns = nil

	// Streams stalled on a closed window, asking for a 4 MiB file on disk.
	const nconn, streams = 20, 50
	u2 := measure()
	for range nconn {
		c, fr := dial(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0})
		for i := range streams {
			get(fr, uint32(2*i+1), "/big.bin")
		}
		conns = append(conns, c)
	}
	u3 := measure()
	n := nconn * streams
	t.Logf("%d stalled streams on %d connections: fds %+d, goroutines %+d, heap+stacks %+d KiB: %.1f KiB per stream (connections included, both ends); %.2f fds and %.2f goroutines per stream",
		n, nconn, u3.fds-u2.fds, u3.goroutines-u2.goroutines, (u3.heap-u2.heap)>>10, float64(u3.heap-u2.heap)/float64(n)/1024,
		float64(u3.fds-u2.fds)/float64(n), float64(u3.goroutines-u2.goroutines)/float64(n))
	for _, c := range conns {
		c.Close()
	}
}
