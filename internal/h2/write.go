package h2

import (
	"encoding/binary"
	"errors"
	"log/slog"
	"net"
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

// headerRoom is the room made for a response's header block before it is encoded: a typical
// block fits; a larger one overfills the buffer once, which the next frame's wait absorbs.
const headerRoom = 1 << 10

var outPool = sync.Pool{New: func() any { b := make([]byte, 0, outBufferSize); return &b }}

// outWriter is the Framer's writer. The Framer writes only control frames here (SETTINGS and
// their acks, PING acks, WINDOW_UPDATE, RST_STREAM, GOAWAY): they are queued without waiting
// for room, and counted, so that a peer that sends them but does not read is caught by
// Server.MaxQueuedControlFrames instead of growing the buffer. Callers hold mu.
type outWriter struct{ c *conn }

func (w outWriter) Write(p []byte) (int, error) {
	c := w.c
	c.appendOut(p)
	c.ctrlQueued++
	if c.writing && c.ctrlQueued > c.maxCtrl && !c.flooded.Load() {
		// The write in progress is stuck on a peer that does not read while it keeps
		// asking for answers: the reader closes the connection after this frame.
		c.flooded.Store(true)
	}
	return len(p), nil
}

// appendOut adds p to the output. It never waits, so that a header block stays whole: callers
// of data make room first (makeRoomLocked).
func (c *conn) appendOut(p []byte) {
	if c.werr != nil {
		return
	}
	if c.out == nil {
		c.out = outPool.Get().(*[]byte)
	}
	*c.out = append(*c.out, p...)
}

// makeRoomLocked waits until n more bytes fit in the output buffer, writing it out when no
// other goroutine is writing, waiting for the one that is otherwise. This is what bounds a
// connection's output: at most one buffer being written and one being filled, plus the
// control frames MaxQueuedControlFrames allows.
func (c *conn) makeRoomLocked(n int) {
	for c.werr == nil && c.out != nil && len(*c.out) > 0 && len(*c.out)+n > outBufferSize {
		if c.writing {
			c.cond.Wait()
		} else {
			c.flushLocked()
		}
	}
}

// flushLocked writes the output to the socket, unless another goroutine is writing: that one
// writes what was added meanwhile before it lets go. The socket write is done without mu, so
// that a peer that does not read blocks only the writer, for at most SendTimeout, and never
// the goroutines that queue frames, reset streams or shut the connection down.
func (c *conn) flushLocked() {
	if c.writing || c.out == nil {
		return
	}
	c.writing = true
	for c.out != nil && c.werr == nil {
		buf := c.out
		c.out = nil
		c.ctrlQueued = 0
		if len(*buf) == 0 {
			c.putOut(buf)
			break
		}
		deadline := c.writeDeadlineLocked()
		c.mu.Unlock()
		if !deadline.IsZero() {
			c.nc.SetWriteDeadline(deadline)
		}
		_, err := c.nc.Write(*buf)
		c.mu.Lock()
		c.putOut(buf)
		if err != nil && c.werr == nil {
			c.werr = err
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && !c.closing {
				c.srv.stats().WriteTimeouts.Add(1)
				c.srv.logs().writeTimeout.Hit(c.ctx, slog.String("remote", c.remoteAddr), slog.Duration("send_timeout", c.sendTimeout))
			}
			defer c.wakeReader()
		}
	}
	if c.werr != nil {
		c.releaseOutLocked()
	}
	c.writing = false
	c.cond.Broadcast()
}

// writeDeadlineLocked is the deadline of the next write: SendTimeout from now, moved forward
// at most every tenth of it, and at most once a second (each move costs a timer update), so that a slow download whose
// every step progresses lives on and a stalled one does not. A connection being closed gets
// goAwayTimeout for its last words.
func (c *conn) writeDeadlineLocked() time.Time {
	now := time.Now()
	if c.closing {
		c.wArmed = time.Time{}
		return now.Add(goAwayTimeout)
	}
	if now.Sub(c.wArmed) < min(c.sendTimeout/10, time.Second) {
		return time.Time{} // the one set a moment ago stands: each write gets 90% of it or more
	}
	c.wArmed = now
	return now.Add(c.sendTimeout)
}

// waitLocked waits for the connection's state to change (cond), first writing out what is
// queued, so that the peer has what it needs to answer. Writing releases mu, so it returns
// without waiting after a write: callers check their condition again in a loop.
func (c *conn) waitLocked() {
	if c.out != nil && !c.writing && c.werr == nil {
		c.flushLocked()
		return
	}
	c.cond.Wait()
}

func (c *conn) putOut(buf *[]byte) {
	if cap(*buf) > 2*outBufferSize {
		return // grown by a burst of control frames: let it go
	}
	*buf = (*buf)[:0]
	outPool.Put(buf)
}

func (c *conn) releaseOutLocked() {
	if c.out != nil {
		c.putOut(c.out)
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
	// Room is made before the encoder is touched: once encoding starts, the block must reach
	// the buffer whole and in order with the encoder's state.
	c.makeRoomLocked(headerRoom)
	if st.reset || c.werr != nil {
		return
	}
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
