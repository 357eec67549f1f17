// Package h2test is a raw HTTP/2 client for attack tests: it writes frames no client library
// would (streams without window, floods of control frames, header blocks that never end) over
// TLS to a server on loopback.
package h2test

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"strconv"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// Conn is a TLS connection that negotiated h2, with a Framer on it. The client's preface and
// SETTINGS have been written.
type Conn struct {
	*tls.Conn
	Framer *http2.Framer
	bw     *bufio.Writer
}

// Dial connects to addr, trusting pool, and writes the preface and settings; the Framer writes
// each frame straight to the connection. The connection's receive buffer is 64 KiB, so that a
// client that stops reading fills it soon. It is closed when the test ends.
func Dial(t testing.TB, addr string, pool *x509.CertPool, settings ...http2.Setting) *Conn {
	t.Helper()
	return dial(t, addr, pool, false, settings)
}

// DialBuffered is Dial with frames written through a 64 KiB buffer, as a flooding client
// would write them (a TLS record per frame would spend the attacker's own CPU); Flush sends
// them.
func DialBuffered(t testing.TB, addr string, pool *x509.CertPool, settings ...http2.Setting) *Conn {
	t.Helper()
	return dial(t, addr, pool, true, settings)
}

func dial(t testing.TB, addr string, pool *x509.CertPool, buffered bool, settings []http2.Setting) *Conn {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	nc.(*net.TCPConn).SetReadBuffer(64 << 10)
	tc := tls.Client(nc, &tls.Config{RootCAs: pool, NextProtos: []string{"h2"}, ServerName: "127.0.0.1"})
	if err := tc.Handshake(); err != nil {
		nc.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { tc.Close() })
	if p := tc.ConnectionState().NegotiatedProtocol; p != "h2" {
		t.Fatalf("negotiated %q, want h2", p)
	}
	c := &Conn{Conn: tc}
	var w io.Writer = tc
	if buffered {
		c.bw = bufio.NewWriterSize(tc, 64<<10)
		w = c.bw
	}
	if _, err := io.WriteString(w, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	c.Framer = http2.NewFramer(w, tc)
	c.Framer.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	if err := c.Framer.WriteSettings(settings...); err != nil {
		t.Fatal(err)
	}
	return c
}

// Flush sends the frames buffered by a connection from DialBuffered.
func (c *Conn) Flush() error {
	if c.bw == nil {
		return nil
	}
	return c.bw.Flush()
}

// Block is the HPACK encoding of fields.
func Block(fields ...hpack.HeaderField) []byte {
	var buf bytes.Buffer
	enc := hpack.NewEncoder(&buf)
	for _, f := range fields {
		enc.WriteField(f)
	}
	return buf.Bytes()
}

// GetBlock is the header block of a GET of path from https://127.0.0.1.
func GetBlock(path string) []byte {
	return Block(
		hpack.HeaderField{Name: ":method", Value: "GET"}, hpack.HeaderField{Name: ":scheme", Value: "https"},
		hpack.HeaderField{Name: ":authority", Value: "127.0.0.1"}, hpack.HeaderField{Name: ":path", Value: path},
	)
}

// WriteGet opens stream id with a GET of path, in one HEADERS frame that ends the stream.
func WriteGet(fr *http2.Framer, id uint32, path string) error {
	return fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: GetBlock(path), EndStream: true, EndHeaders: true})
}

// LargeFragment is n bytes of a header block of many 1000-byte fields, cut at n: the
// fragment of a CONTINUATION frame that never ends a block.
func LargeFragment(n int) []byte {
	var buf bytes.Buffer
	enc := hpack.NewEncoder(&buf)
	for i := 0; buf.Len() < n; i++ {
		enc.WriteField(hpack.HeaderField{Name: "x-flood-" + strconv.Itoa(i), Value: string(bytes.Repeat([]byte{'a'}, 1000))})
	}
	return buf.Bytes()[:n]
}

// ClosedWithin waits until the server has closed c, reading and discarding what comes, and
// returns how long that took; it fails the test if c is still open after d.
func ClosedWithin(t testing.TB, c net.Conn, d time.Duration, what string) time.Duration {
	t.Helper()
	start := time.Now()
	c.SetReadDeadline(start.Add(d))
	buf := make([]byte, 64<<10)
	for {
		if _, err := c.Read(buf); err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("%s: still open after %v", what, d)
			}
			return time.Since(start)
		}
	}
}

// PingIdle writes, every interval until the test ends or a write fails, the frames that ask for
// no response body: PING, a WINDOW_UPDATE of the connection, SETTINGS and a PRIORITY for stream
// 3. A server whose idle timer they reset would keep the connection open for ever.
func (c *Conn) PingIdle(t testing.TB, every time.Duration) {
	stop, done := make(chan struct{}), make(chan struct{})
	t.Cleanup(func() {
		close(stop)
		<-done
	})
	go func() {
		defer close(done)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				c.Framer.WritePing(false, [8]byte{2})
				c.Framer.WriteWindowUpdate(0, 1)
				c.Framer.WriteSettings()
				c.Framer.WritePriority(3, http2.PriorityParam{Weight: 1})
				if c.Flush() != nil {
					return
				}
			}
		}
	}()
}

// MaxWindow is the SETTINGS_INITIAL_WINDOW_SIZE that lets a server send each stream as much as
// the protocol allows.
var MaxWindow = http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1<<31 - 1}

// OpenConnWindow raises the connection's window from its initial 65,535 bytes to the most the
// protocol allows.
func (c *Conn) OpenConnWindow() error {
	return c.Framer.WriteWindowUpdate(0, 1<<31-1-65535)
}
