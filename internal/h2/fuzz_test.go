package h2

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// FuzzServeConn feeds a connection, after the client preface and SETTINGS, whatever frames (or
// bytes) the fuzzer makes up. The server must not panic, must keep reading what it is sent,
// must end the connection soon after the client closes it, and must not hand a handler a
// request body that reads as complete but is not as long as its content-length.
func FuzzServeConn(f *testing.F) {
	for _, seed := range fuzzSeeds(f) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		serveFuzzInput(t, in)
	})
}

func serveFuzzInput(t *testing.T, in []byte) {
	client, server := net.Pipe()
	defer client.Close()
	var open, opens atomic.Int64
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		if err == nil && r.ContentLength >= 0 && n != r.ContentLength {
			t.Errorf("request body read as complete with %d bytes, content-length %d", n, r.ContentLength)
		}
		w.Header().Set("Content-Type", "text/plain")
		if strings.HasPrefix(r.URL.Path, "/big") {
			// Large enough to wait for window, and be sent by the connection's sender.
			w.(BodySender).SendBody(countingBody{n: 200_000, open: &open, opens: &opens})
			return
		}
		io.WriteString(w, "hello")
	})
	served := make(chan struct{})
	go func() {
		defer close(served)
		(&Server{}).ServeConn(context.Background(), server, h)
	}()
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		io.Copy(io.Discard, client)
	}()

	var start bytes.Buffer
	start.WriteString(http2.ClientPreface)
	http2.NewFramer(&start, nil).WriteSettings()
	client.SetWriteDeadline(time.Now().Add(waitTimeout))
	_, err := client.Write(append(start.Bytes(), in...))
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("the server stopped reading its connection")
	}
	client.Close()
	select {
	case <-served:
	case <-time.After(waitTimeout):
		t.Fatalf("ServeConn did not return within %v of the client closing the connection", waitTimeout)
	}
	<-drained
	if n := open.Load(); n != 0 {
		t.Errorf("%d response bodies left open after ServeConn returned", n)
	}
}

// fuzzSeeds returns inputs that follow the preface and SETTINGS: valid requests and frames, and
// garbage.
func fuzzSeeds(t testing.TB) [][]byte {
	var seeds [][]byte
	frames := func(write func(fr *http2.Framer, hdr func(kv ...string) []byte)) {
		var buf, hbuf bytes.Buffer
		enc := hpack.NewEncoder(&hbuf)
		hdr := func(kv ...string) []byte {
			hbuf.Reset()
			for i := 0; i < len(kv); i += 2 {
				enc.WriteField(hpack.HeaderField{Name: kv[i], Value: kv[i+1]})
			}
			return bytes.Clone(hbuf.Bytes())
		}
		write(http2.NewFramer(&buf, nil), hdr)
		seeds = append(seeds, buf.Bytes())
	}
	get := []string{":method", "GET", ":scheme", "https", ":path", "/", ":authority", "example.com"}
	post := []string{":method", "POST", ":scheme", "https", ":path", "/upload", ":authority", "example.com", "content-length", "5"}
	check := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}

	// A GET.
	frames(func(fr *http2.Framer, hdr func(...string) []byte) {
		check(fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hdr(get...), EndStream: true, EndHeaders: true}))
	})
	// A POST with its body in DATA, then a GET.
	frames(func(fr *http2.Framer, hdr func(...string) []byte) {
		check(fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hdr(post...), EndHeaders: true}))
		check(fr.WriteData(1, true, []byte("hello")))
		check(fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: hdr(get...), EndStream: true, EndHeaders: true}))
	})
	// WINDOW_UPDATEs for the connection and a stream, a PING, a SETTINGS ack.
	frames(func(fr *http2.Framer, hdr func(...string) []byte) {
		check(fr.WriteWindowUpdate(0, 1<<20))
		check(fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hdr(get...), EndStream: true, EndHeaders: true}))
		check(fr.WriteWindowUpdate(1, 1000))
		check(fr.WritePing(false, [8]byte{1, 2, 3}))
		check(fr.WriteSettingsAck())
	})
	// A POST reset by the client before its body ends.
	frames(func(fr *http2.Framer, hdr func(...string) []byte) {
		check(fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hdr(post...), EndHeaders: true}))
		check(fr.WriteData(1, false, []byte("he")))
		check(fr.WriteRSTStream(1, http2.ErrCodeCancel))
	})
	// No send window: the response waits until the connection closes.
	frames(func(fr *http2.Framer, hdr func(...string) []byte) {
		check(fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0}))
		check(fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hdr(get...), EndStream: true, EndHeaders: true}))
	})
	// Bodies sent by the connection's sender as window comes, one of them reset midway.
	big := []string{":method", "GET", ":scheme", "https", ":path", "/big", ":authority", "example.com"}
	frames(func(fr *http2.Framer, hdr func(...string) []byte) {
		check(fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1000}))
		check(fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hdr(big...), EndStream: true, EndHeaders: true}))
		check(fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: hdr(big...), EndStream: true, EndHeaders: true}))
		check(fr.WriteWindowUpdate(0, 1<<20))
		check(fr.WriteWindowUpdate(1, 50000))
		check(fr.WriteWindowUpdate(3, 300000))
		check(fr.WriteRSTStream(1, http2.ErrCodeCancel))
		check(fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0}))
	})
	// A header block split over CONTINUATION, and request trailers.
	frames(func(fr *http2.Framer, hdr func(...string) []byte) {
		block := hdr(append(post[:len(post)-2:len(post)-2], "trailer", "x-sum")...)
		check(fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block[:3]}))
		check(fr.WriteContinuation(1, true, block[3:]))
		check(fr.WriteData(1, false, []byte("hello")))
		check(fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hdr("x-sum", "1"), EndStream: true, EndHeaders: true}))
	})
	// Garbage.
	seeds = append(seeds,
		[]byte("GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"),
		[]byte{0, 0, 4, 8, 0, 0, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff, 0xde, 0xad},
		nil,
	)
	return seeds
}
