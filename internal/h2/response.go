package h2

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"golang.org/x/net/http2"
)

var errTooLong = errors.New("h2: handler wrote more than the declared Content-Length")

// pendingMax is how much of a body of unknown length is held back, so that a short response
// can still be sent with a content-length.
const pendingMax = 4 << 10

// stream is one request and its response; it is the handler's http.ResponseWriter.
//
// The fields under "handler" belong to the goroutine running the handler; those under "mu" to
// whoever holds the connection's mu.
type stream struct {
	c      *conn
	id     uint32
	ctx    context.Context
	cancel context.CancelFunc
	req    *http.Request
	body   *requestBody // nil when the request had no body

	// handler
	inline      bool // the handler runs on the reader role's goroutine
	inlineBytes int
	hdr         http.Header
	status      int         // final status, once WriteHeader was called
	snapshot    http.Header // the header as WriteHeader saw it, while the header block waits
	held        bool        // the header block waits for the body's length
	declaredLen int64       // the handler's Content-Length, or -1
	written     int64
	pending     []byte // body held back while the length is unknown (up to pendingMax)
	headerSent  bool
	endSent     bool // END_STREAM sent, or the stream reset
	noBody      bool // HEAD, 1xx, 204 or 304: no body is sent

	deferred bool // SendBody handed the rest of the body to the sender

	// mu
	sendWindow   int64
	reset        bool      // RST_STREAM sent or received
	stalledSince time.Time // since when the response has waited for window; zero if it is not
	dbody        Body      // the body SendBody left to the sender, until it is sent or the stream closed
	dOff, dLeft  int64     // where the sender is in dbody, and what is left
}

func (st *stream) Header() http.Header {
	if st.hdr == nil {
		st.hdr = make(http.Header)
	}
	return st.hdr
}

// WriteHeader sends the status and header now when the body's length is known (declared, or
// none), so that later changes to the header map cannot reach the peer; otherwise it keeps a
// copy until the body shows its length.
func (st *stream) WriteHeader(code int) {
	if code < 100 || code > 999 {
		panic(fmt.Sprintf("h2: invalid WriteHeader code %v", code))
	}
	if st.status != 0 {
		st.c.log.LogAttrs(st.ctx, slog.LevelDebug, "HTTP/2 handler called WriteHeader twice",
			slog.Int("first", st.status), slog.Int("second", code))
		return
	}
	if code < 200 {
		if code != http.StatusSwitchingProtocols {
			st.sendInterim(code)
		}
		return
	}
	st.status = code
	st.noBody = st.req.Method == http.MethodHead || code == http.StatusNoContent || code == http.StatusNotModified
	if vv := st.hdr["Content-Length"]; len(vv) == 1 {
		if n, err := strconv.ParseUint(vv[0], 10, 63); err == nil {
			st.declaredLen = int64(n)
		} else {
			delete(st.hdr, "Content-Length")
		}
	} else if len(vv) > 1 {
		delete(st.hdr, "Content-Length")
	}
	switch {
	case st.noBody || st.declaredLen == 0:
		st.send(nil, true)
	case st.declaredLen > 0:
		st.send(nil, false)
	default:
		st.held = true
		st.snapshot = st.hdr.Clone()
	}
}

// sendInterim sends a 1xx response's header block (RFC 9110 §15.2), such as 103 Early Hints.
func (st *stream) sendInterim(code int) {
	c := st.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if st.reset || c.werr != nil {
		return
	}
	c.writeHeadersLocked(st, code, st.hdr, "", false)
	if !st.inline {
		c.flushLocked()
	}
}

func (st *stream) Write(p []byte) (int, error) {
	if st.status == 0 {
		st.WriteHeader(http.StatusOK)
	}
	if st.deferred {
		return 0, errAfterSendBody
	}
	if st.noBody {
		if st.req.Method == http.MethodHead {
			return len(p), nil
		}
		return 0, http.ErrBodyNotAllowed
	}
	if st.declaredLen >= 0 && st.written+int64(len(p)) > st.declaredLen {
		return 0, errTooLong
	}
	st.written += int64(len(p))
	if !st.headerSent && st.declaredLen < 0 {
		if len(st.pending)+len(p) <= pendingMax {
			st.pending = append(st.pending, p...)
			return len(p), nil
		}
		if err := st.sendPending(false); err != nil {
			return 0, err
		}
	}
	if err := st.send(p, st.declaredLen >= 0 && st.written == st.declaredLen); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Flush sends what the handler wrote so far (http.Flusher).
func (st *stream) Flush() { st.FlushError() }

// FlushError is Flush with the error (for http.ResponseController).
func (st *stream) FlushError() error {
	if st.status == 0 {
		st.WriteHeader(http.StatusOK)
	}
	if !st.headerSent {
		if err := st.sendPending(false); err != nil {
			return err
		}
	}
	c := st.c
	c.mu.Lock()
	defer c.mu.Unlock()
	c.flushLocked()
	if st.reset {
		return errStreamClosed
	}
	return c.werr
}

// sendPending sends the header block and the held-back body; with end, and nothing more to
// come, the block carries the body's length.
func (st *stream) sendPending(end bool) error {
	p := st.pending
	st.pending = nil
	return st.send(p, end)
}

// send sends the header block if not yet sent, then p as DATA frames within the flow-control
// windows, the last one ending the stream if end. Without window it waits, first giving the
// reader role away if it holds it.
func (st *stream) send(p []byte, end bool) error {
	c := st.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := st.sendErrLocked(); err != nil {
		return err
	}
	if !st.headerSent {
		hdr, length := st.hdr, ""
		if st.held {
			hdr = st.snapshot
			if end && !st.noBody {
				length = strconv.Itoa(len(p))
			}
		}
		st.headerSent = true
		headersEnd := end && len(p) == 0
		c.writeHeadersLocked(st, st.status, hdr, length, headersEnd)
		if headersEnd {
			st.endSent = true
		}
	}
	sent := false
	for len(p) > 0 || end && !st.endSent {
		if st.inline && st.inlineBytes > c.inlineLimit {
			c.mu.Unlock()
			c.moveReader(st)
			c.mu.Lock()
		}
		n := int64(min(len(p), int(c.peerMaxFrame)))
		for n > 0 && min(c.sendWindow, st.sendWindow) <= 0 {
			if st.inline {
				c.mu.Unlock()
				c.moveReader(st)
				c.mu.Lock()
			} else {
				if st.stalledSince.IsZero() {
					st.stalledSince = time.Now()
				}
				c.waitLocked()
			}
			if err := st.sendErrLocked(); err != nil {
				return err
			}
		}
		st.stalledSince = time.Time{}
		c.makeRoomLocked(9 + int(n))
		if err := st.sendErrLocked(); err != nil {
			return err
		}
		if n > 0 {
			if w := min(c.sendWindow, st.sendWindow); w <= 0 {
				continue // taken back by a SETTINGS frame while room was made
			} else {
				n = min(n, w)
			}
		}
		var flags http2.Flags
		if end && n == int64(len(p)) {
			flags = http2.FlagDataEndStream
			st.endSent = true
		}
		c.appendFrameHeader(int(n), http2.FrameData, flags, st.id)
		c.appendOut(p[:n])
		sent = sent || n > 0
		c.sendWindow -= n
		st.sendWindow -= n
		st.inlineBytes += int(n)
		p = p[n:]
	}
	if sent {
		c.moved()
	}
	if st.inline && st.inlineBytes > c.inlineLimit {
		// Past the limit: the handler's next wait, whatever it is for, must not hold up the
		// connection's other streams.
		c.mu.Unlock()
		c.moveReader(st)
		c.mu.Lock()
	}
	if !st.inline {
		c.flushLocked()
	}
	return st.sendErrLocked()
}

func (st *stream) sendErrLocked() error {
	if st.c.werr != nil {
		return st.c.werr
	}
	if st.reset {
		return errStreamClosed
	}
	return nil
}

// finish completes the response once the handler returned: what is held back is sent, the
// stream ends, and the connection forgets it.
func (st *stream) finish() {
	if st.status == 0 {
		st.WriteHeader(http.StatusOK)
	}
	if st.deferred {
		// The stream lives on without its handler until the sender has sent the body;
		// the stream's count in open goes with it (closeStreamLocked).
		st.cancel()
		return
	}
	if !st.endSent {
		if st.declaredLen >= 0 && st.written < st.declaredLen && !st.noBody {
			// A body cut short (a failed read of a blob) must not look complete.
			st.abort(http2.ErrCodeInternal)
		} else if !st.headerSent {
			st.sendPending(true)
		} else {
			st.send(nil, true)
		}
	}
	c := st.c
	c.mu.Lock()
	if !st.reset {
		if st.body != nil && !st.body.ended {
			// The response is complete; the rest of the request is not wanted (§8.1).
			c.fr.WriteRSTStream(st.id, http2.ErrCodeNo)
			st.reset = true
		}
		c.closeStreamLocked(st)
	}
	c.releaseLocked()
	if !st.inline {
		c.flushLocked()
	}
	c.mu.Unlock()
	st.cancel()
}

// abort resets the stream with code.
func (st *stream) abort(code http2.ErrCode) {
	c := st.c
	c.mu.Lock()
	defer c.mu.Unlock()
	st.endSent = true
	if !st.reset && c.werr == nil {
		c.resetLocked(st.id, code)
	}
	st.reset = true
}

// markReset marks the stream reset, by either side, and cancels its request's context.
// Callers hold mu.
func (st *stream) markReset() {
	st.reset = true
	if st.cancel != nil {
		st.cancel()
	}
	st.c.cond.Broadcast()
}
