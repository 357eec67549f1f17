package edge

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dt-cdn/dt/internal/testcert"
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
		cmd := exec.Command(os.Args[0], "-test.run=^TestIdleConnMemoryChild$")
		cmd.Env = append(os.Environ(), "EDGE_IDLE_CHILD="+mode)
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		stdin, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(stdout)
		var edgeAddr, adminAddr string
		for sc.Scan() {
			if f := strings.Fields(sc.Text()); len(f) == 3 && f[0] == "ADDRS" {
				edgeAddr, adminAddr = f[1], f[2]
				break
			}
		}
		go io.Copy(io.Discard, stdout)
		measure := func() idleMem {
			resp, err := http.Get("http://" + adminAddr + "/")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var m idleMem
			json.NewDecoder(resp.Body).Decode(&m)
			return m
		}
		before := measure()
		var conns []net.Conn
		for i := range n {
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 2, byte(1+i/200))}}
			c, err := d.Dial("tcp", edgeAddr)
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
		stdin.Close()
		cmd.Wait()
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
	}, nil, SiteOptions{})
	s, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	s.SetSite(d.site)
	var tc *tls.Config
	if mode != "h1" {
		cert, _ := testcert.SelfSigned(t)
		tc = &tls.Config{Certificates: []tls.Certificate{cert}}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	adminLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	admin := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		json.NewEncoder(w).Encode(idleMem{Heap: ms.HeapInuse, Stacks: ms.StackInuse, RSS: rss(), Goroutines: runtime.NumGoroutine()})
	})}
	go admin.Serve(adminLn)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, ln, tc) }()
	fmt.Printf("ADDRS %s %s\n", ln.Addr(), adminLn.Addr())
	io.Copy(io.Discard, os.Stdin)
	cancel()
	admin.Close()
	<-served
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
