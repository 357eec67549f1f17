package httpserve

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dt-cdn/dt/internal/testkit/testcert"
)

// idleMem is what the child of TestIdleConnMemory reports: the Go heap and stacks in use
// after a GC, the goroutines, and the process's resident memory.
type idleMem struct {
	Heap, Stacks, RSS uint64
	Goroutines        int
}

// TestIdleConnMemory measures the memory an edge spends per idle keep-alive connection, after
// one request on each: plain HTTP by package h1, and HTTPS over HTTP/1.1 for a small page and
// for one large enough to be corked (tls-corked). The edge runs in a
// child process, so that the client's connections do not count. It takes a while and prints
// figures, and only runs with DT_IDLE_MEM=1.
func TestIdleConnMemory(t *testing.T) {
	if os.Getenv("DT_IDLE_MEM") == "" {
		t.Skip("set DT_IDLE_MEM=1 to measure")
	}
	const n = 2000
	for _, mode := range []string{"h1", "tls", "tls-corked"} {
		addrs, stop := startChild(t, "TestIdleConnMemoryChild", "EDGE_IDLE_CHILD="+mode)
		measure := func() idleMem {
			var m idleMem
			childReport(t, addrs, &m)
			return m
		}
		before := measure()
		var conns []net.Conn
		for i := range n {
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 2, byte(1+i/200))}}
			c, err := d.Dial("tcp", addrs.Edge)
			if err != nil {
				t.Fatal(err)
			}
			if mode != "h1" {
				tc := tls.Client(c, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
				c = tc
			}
			path := "/index.html"
			if mode == "tls-corked" {
				path = "/large.html"
			}
			fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: edge.test\r\n\r\n", path)
			resp, err := http.ReadResponse(bufio.NewReaderSize(c, 512), nil)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			conns = append(conns, c)
		}
		time.Sleep(time.Second) // lets the server's goroutines settle into their idle reads
		after := measure()
		per := func(a, b uint64) string { return fmt.Sprintf("%.1f KiB", float64(int64(a)-int64(b))/n/1024) }
		t.Logf("%s: %d idle connections: Go heap %s, stacks %s, RSS %s per connection; goroutines %d -> %d",
			mode, n, per(after.Heap, before.Heap), per(after.Stacks, before.Stacks), per(after.RSS, before.RSS), before.Goroutines, after.Goroutines)
		for _, c := range conns {
			c.Close()
		}
		stop()
	}
}

// TestIdleConnMemoryChild is TestIdleConnMemory's child: an edge, and an endpoint reporting its
// memory, until its standard input closes.
func TestIdleConnMemoryChild(t *testing.T) {
	mode := os.Getenv("EDGE_IDLE_CHILD")
	if mode == "" {
		t.Skip("the child of TestIdleConnMemory")
	}
	d := newDeploy(t, map[string]*testFile{
		"/index.html": {body: htmlPage("index", 2000), typ: "text/html; charset=utf-8"},
		"/large.html": {body: htmlPage("large", 20000), typ: "text/html; charset=utf-8"},
	})
	s, err := newSiteServer(Config{})
	if err != nil {
		t.Fatal(err)
	}
	s.SetSite(d.site)
	var tc *tls.Config
	if mode != "h1" {
		cert, _ := testcert.SelfSigned(t)
		tc = &tls.Config{Certificates: []tls.Certificate{cert}}
	}
	serveChild(t, s, tc, "", func() any {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return idleMem{Heap: ms.HeapInuse, Stacks: ms.StackInuse, RSS: rss(), Goroutines: runtime.NumGoroutine()}
	})
}

// rss is the process's resident memory in bytes.
func rss() uint64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, _ := strconv.ParseUint(f[1], 10, 64)
	return pages * uint64(os.Getpagesize())
}
