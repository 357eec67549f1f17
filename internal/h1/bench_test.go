package h1

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"testing"
)

// BenchmarkSmallResponses measures keep-alive requests for a 1 KiB and a 25 KiB body (the
// sizes of a page and of a compressed script) on 127.0.0.1, served by this package and by
// net/http's server, side by side. The client writes each request by hand and reads the
// response with http.ReadResponse, so that most of the time measured is the server's.
func BenchmarkSmallResponses(b *testing.B) {
	for _, size := range []int{1 << 10, 25 << 10} {
		body := bytes.Repeat([]byte("x"), size)
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			w.Header().Set("Etag", `"0123456789abcdef"`)
			w.Header().Set("Cache-Control", "public, max-age=0, must-revalidate")
			w.Write(body)
		})
		for _, srv := range []struct {
			name  string
			serve func(net.Listener) (stop func())
		}{
			{"h1", func(ln net.Listener) func() {
				s := &Server{Handler: h}
				go s.Serve(ln)
				return func() { s.Close() }
			}},
			{"net-http", func(ln net.Listener) func() {
				s := &http.Server{Handler: h}
				go s.Serve(ln)
				return func() { s.Close() }
			}},
		} {
			b.Run(srv.name+"/"+strconv.Itoa(size>>10)+"KiB", func(b *testing.B) {
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(srv.serve(ln))
				benchmarkRequests(b, ln.Addr().String(), size)
			})
		}
	}
}

// benchmarkRequests sends b.N requests over connections of its parallel goroutines.
func benchmarkRequests(b *testing.B, addr string, size int) {
	req := []byte("GET /page.html HTTP/1.1\r\nHost: bench.test\r\nAccept-Encoding: gzip\r\nUser-Agent: bench\r\n\r\n")
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.SetParallelism(4)
	b.RunParallel(func(pb *testing.PB) {
		c, err := (&net.Dialer{}).DialContext(context.Background(), "tcp", addr)
		if err != nil {
			b.Error(err)
			return
		}
		defer c.Close()
		br := bufio.NewReaderSize(c, 64<<10)
		for pb.Next() {
			if _, err := c.Write(req); err != nil {
				b.Error(err)
				return
			}
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				b.Error(err)
				return
			}
			n, err := io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if err != nil || n != int64(size) {
				b.Errorf("body: %d bytes, %v", n, err)
				return
			}
		}
	})
}

// BenchmarkWriteHeader measures a response's start and header section as the edge's static
// handler sets it (values shared between responses, as it keeps them), without the network.
func BenchmarkWriteHeader(b *testing.B) {
	req, _, ok := parseHead(baseRequest(context.Background()), []byte(browserRequest))
	if !ok {
		b.Fatal("request declined")
	}
	fields := http.Header{
		"Content-Type":           {"text/html; charset=utf-8"},
		"Content-Length":         {"1024"},
		"Etag":                   {`"0123456789abcdef0123456789abcdef"`},
		"Cache-Control":          {"public, max-age=0, must-revalidate"},
		"Last-Modified":          {"Mon, 07 Dec 2026 20:00:00 GMT"},
		"Accept-Ranges":          {"bytes"},
		"Vary":                   {"Accept-Encoding"},
		"X-Content-Type-Options": {"nosniff"},
	}
	c := &conn{srv: &Server{}, log: slog.New(slog.DiscardHandler)}
	c.takeOut()
	b.ReportAllocs()
	for b.Loop() {
		w := c.newResponse(req)
		h := w.Header()
		for k, vv := range fields {
			h[k] = vv
		}
		w.WriteHeader(http.StatusOK)
		c.out = c.out[:0]
	}
}

// BenchmarkWriteHeaderBlock measures what BenchmarkWriteHeader does with the handler's fixed
// fields in a header block (WriteHeaderBlock), X-Content-Type-Options in the map beside it
// or in the block too.
func BenchmarkWriteHeaderBlock(b *testing.B) {
	req, _, ok := parseHead(baseRequest(context.Background()), []byte(browserRequest))
	if !ok {
		b.Fatal("request declined")
	}
	var hb HeaderBlock
	for _, f := range [][2]string{
		{"Content-Type", "text/html; charset=utf-8"},
		{"Etag", `"0123456789abcdef0123456789abcdef"`},
		{"Cache-Control", "public, max-age=0, must-revalidate"},
		{"Last-Modified", "Mon, 07 Dec 2026 20:00:00 GMT"},
		{"Accept-Ranges", "bytes"},
		{"Vary", "Accept-Encoding"},
	} {
		if err := hb.Add(f[0], f[1]); err != nil {
			b.Fatal(err)
		}
	}
	nosniff := []string{"nosniff"}
	for _, inMap := range []bool{true, false} {
		name := "nosniff-in-block"
		if inMap {
			name = "nosniff-in-map"
		} else if err := hb.Add("X-Content-Type-Options", nosniff[0]); err != nil {
			b.Fatal(err)
		}
		b.Run(name, func(b *testing.B) {
			c := &conn{srv: &Server{}, log: slog.New(slog.DiscardHandler)}
			c.takeOut()
			b.ReportAllocs()
			for b.Loop() {
				w := c.newResponse(req)
				if inMap {
					w.Header()["X-Content-Type-Options"] = nosniff
				}
				w.WriteHeaderBlock(http.StatusOK, &hb, 1024)
				c.out = c.out[:0]
			}
		})
	}
}
