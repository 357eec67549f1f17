package h2

import (
	"encoding/binary"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// outBufferSize is the output buffer a connection holds while it has frames to send (it holds
// none otherwise). It is flushed when full, so large bodies leave in writes of this size.
const outBufferSize = 64 << 10

var outPool = sync.Pool{New: func() any { b := make([]byte, 0, outBufferSize); return &b }}

// outWriter is the Framer's writer: frames are appended to the connection's output buffer.
// Callers hold mu.
type outWriter struct{ c *conn }

func (w outWriter) Write(p []byte) (int, error) {
	w.c.appendOut(p)
	return len(p), nil
}

// appendOut adds p to the output, writing the buffer out first when p does not fit.
func (c *conn) appendOut(p []byte) {
	if c.werr != nil {
		return
	}
	if c.out == nil {
		c.out = outPool.Get().(*[]byte)
	}
	if len(*c.out)+len(p) > cap(*c.out) && len(*c.out) > 0 {
		c.flushLocked()
		if c.werr != nil {
			return
		}
		c.out = outPool.Get().(*[]byte)
	}
	*c.out = append(*c.out, p...)
}

// flushLocked writes the output buffer to the socket.
func (c *conn) flushLocked() {
	if c.out == nil {
		return
	}
	if len(*c.out) > 0 && c.werr == nil {
		if _, err := c.nc.Write(*c.out); err != nil {
			c.werr = err
			c.cond.Broadcast()
			defer c.wakeReader()
		}
	}
	c.releaseOutLocked()
}

func (c *conn) releaseOutLocked() {
	if c.out != nil {
		*c.out = (*c.out)[:0]
		outPool.Put(c.out)
		c.out = nil
	}
}

// appendFrameHeader adds a frame header (RFC 9113 §4.1).
func (c *conn) appendFrameHeader(length int, t http2.FrameType, flags http2.Flags, id uint32) {
	var h [9]byte
	h[0], h[1], h[2] = byte(length>>16), byte(length>>8), byte(length)
	h[3], h[4] = byte(t), byte(flags)
	binary.BigEndian.PutUint32(h[5:], id)
	c.appendOut(h[:])
}

// writeHeadersLocked sends a response's header block: HEADERS and as many CONTINUATIONs as the
// peer's frame size needs. contentLength, if not empty, is added as the content-length field.
func (c *conn) writeHeadersLocked(st *stream, status int, hdr map[string][]string, contentLength string, endStream bool) {
	c.hbuf.Reset()
	c.enc.WriteField(hpack.HeaderField{Name: ":status", Value: statusValue(status)})
	for k, vv := range hdr {
		name, ok := c.responseFieldName(k)
		if !ok {
			continue
		}
		for _, v := range vv {
			if httpguts.ValidHeaderFieldValue(v) {
				c.enc.WriteField(hpack.HeaderField{Name: name, Value: v})
			}
		}
	}
	if _, ok := hdr["Date"]; !ok {
		c.enc.WriteField(hpack.HeaderField{Name: "date", Value: c.srv.dateField(time.Now())})
	}
	if contentLength != "" {
		c.enc.WriteField(hpack.HeaderField{Name: "content-length", Value: contentLength})
	}
	block := c.hbuf.Bytes()
	t := http2.FrameHeaders
	for first := true; first || len(block) > 0; first = false {
		n := min(len(block), int(c.peerMaxFrame))
		var flags http2.Flags
		if first && endStream {
			flags |= http2.FlagHeadersEndStream
		}
		if n == len(block) {
			flags |= http2.FlagHeadersEndHeaders
		}
		c.appendFrameHeader(n, t, flags, st.id)
		c.appendOut(block[:n])
		block = block[n:]
		t = http2.FrameContinuation
	}
}

// responseFieldName is the HTTP/2 name of a response header key, and whether it is sent at
// all: invalid names, connection-specific fields (RFC 9113 §8.2.2) and trailer keys are not.
func (c *conn) responseFieldName(k string) (string, bool) {
	if lower, ok := commonLower[k]; ok {
		return lower, true
	}
	switch k {
	case "Connection", "Keep-Alive", "Proxy-Connection", "Transfer-Encoding", "Upgrade", "Te", "Trailer":
		return "", false
	}
	if !httpguts.ValidHeaderFieldName(k) || strings.HasPrefix(k, http.TrailerPrefix) {
		return "", false
	}
	return strings.ToLower(k), true
}

// statusValue is the :status value of code, without formatting for the common ones.
func statusValue(code int) string {
	switch code {
	case 200:
		return "200"
	case 204:
		return "204"
	case 206:
		return "206"
	case 301:
		return "301"
	case 302:
		return "302"
	case 304:
		return "304"
	case 400:
		return "400"
	case 404:
		return "404"
	case 416:
		return "416"
	}
	return strconv.Itoa(code)
}

// commonLower maps the canonical form of common response fields to their HTTP/2 names.
var commonLower = func() map[string]string {
	m := make(map[string]string)
	for _, k := range []string{
		"Accept-Ranges", "Access-Control-Allow-Origin", "Age", "Allow", "Cache-Control",
		"Content-Disposition", "Content-Encoding", "Content-Language", "Content-Length",
		"Content-Location", "Content-Range", "Content-Security-Policy", "Content-Type", "Date",
		"Etag", "Expires", "Last-Modified", "Link", "Location", "Referrer-Policy", "Retry-After",
		"Server", "Set-Cookie", "Strict-Transport-Security", "Vary", "Www-Authenticate",
		"X-Content-Type-Options", "X-Frame-Options",
	} {
		m[k] = strings.ToLower(k)
	}
	return m
}()
