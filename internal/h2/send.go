package h2

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"golang.org/x/net/http2"
)

// Body is a response body the server reads only when the peer can take it (SendBody): a
// stream waiting for flow-control window holds the Body and an offset, no open file and no
// goroutine.
type Body interface {
	// Len is the body's length in bytes.
	Len() int64
	// Open returns a reader of the body from off on. The server closes it once the peer's
	// window is spent or the body sent, and opens it again at the next offset when window
	// comes. An error, or a reader that ends early, resets the stream (INTERNAL_ERROR).
	Open(off int64) (io.ReadCloser, error)
}

// BodySender is implemented by the http.ResponseWriter this server gives handlers.
type BodySender interface {
	// SendBody sends b as the rest of the response body and ends the stream with it; the
	// handler may return at once. A small body the peer's window takes now is sent in line,
	// as Write would; any other is sent by the connection's sender as window comes. Nothing
	// may be written after it. With a declared Content-Length, b must complete it.
	SendBody(b Body) error
}

var (
	errAfterSendBody = errors.New("h2: write after SendBody")
	errBodyLength    = errors.New("h2: SendBody's body does not complete the declared Content-Length")
)

const (
	// sendChunk is the most a DATA frame from the sender carries: one TLS record.
	sendChunk = 16 << 10
	// sendQuantum is how much one stream sends before the sender turns to the next one
	// that has window, so that downloads on one connection share it.
	sendQuantum = 256 << 10
)

var chunkPool = sync.Pool{New: func() any { b := make([]byte, sendChunk); return &b }}

var inlinePool = sync.Pool{New: func() any { b := make([]byte, 0, DefaultInlineLimit); return &b }}

// SendBody implements BodySender.
func (st *stream) SendBody(b Body) error {
	if st.status == 0 {
		st.WriteHeader(http.StatusOK)
	}
	if st.deferred {
		return errAfterSendBody
	}
	n := b.Len()
	if st.noBody {
		if st.req.Method == http.MethodHead || n == 0 {
			return nil
		}
		return http.ErrBodyNotAllowed
	}
	if st.declaredLen >= 0 && st.written+n != st.declaredLen {
		return errBodyLength
	}
	c := st.c
	if n == 0 {
		return st.finishBody()
	}
	if st.inline && n <= int64(c.inlineLimit-st.inlineBytes) {
		c.mu.Lock()
		fits := n <= min(c.sendWindow, st.sendWindow)
		c.mu.Unlock()
		if fits {
			return st.sendInline(b, n)
		}
	}
	if !st.headerSent {
		if err := st.sendPending(false); err != nil {
			return err
		}
	}
	st.written += n
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := st.sendErrLocked(); err != nil {
		return err
	}
	st.deferred = true
	st.endSent = true // the sender ends the stream
	st.dbody, st.dLeft = b, n
	if min(c.sendWindow, st.sendWindow) <= 0 {
		st.stalledSince = time.Now()
	}
	c.sendq = append(c.sendq, st)
	c.kickSenderLocked()
	return nil
}

// finishBody ends the stream now: an empty body, or one already written.
func (st *stream) finishBody() error {
	if !st.headerSent {
		return st.sendPending(true)
	}
	return st.send(nil, true)
}

// sendInline reads a small body and sends it as Write would, on the handler's goroutine.
func (st *stream) sendInline(b Body, n int64) error {
	var p []byte
	if bb, ok := b.(interface{ Bytes() []byte }); ok {
		p = bb.Bytes()
	} else {
		bufp := inlinePool.Get().(*[]byte)
		defer inlinePool.Put(bufp)
		if int64(cap(*bufp)) < n {
			*bufp = make([]byte, n)
		}
		p = (*bufp)[:n]
		rd, err := b.Open(0)
		if err != nil {
			return err
		}
		_, err = io.ReadFull(rd, p)
		rd.Close()
		if err != nil {
			return err
		}
	}
	if int64(len(p)) != n {
		return fmt.Errorf("h2: body of %d bytes says it has %d", len(p), n)
	}
	st.written += n
	if !st.headerSent && st.declaredLen < 0 && len(st.pending)+len(p) <= pendingMax {
		st.pending = append(st.pending, p...)
		return st.sendPending(true)
	}
	if !st.headerSent {
		if err := st.sendPending(false); err != nil {
			return err
		}
	}
	return st.send(p, true)
}

// kickSenderLocked starts the connection's sender when a stream has a body to send and
// window for it, and none runs.
func (c *conn) kickSenderLocked() {
	if c.senderRunning || c.werr != nil || c.sendWindow <= 0 || len(c.sendq) == 0 {
		return
	}
	if c.nextSendLocked(nil, 0) != nil {
		c.senderRunning = true
		c.wg.Go(c.sendLoop)
	}
}

// nextSendLocked is the stream the sender sends from next: cur while its quantum lasts, else
// the first in line with window, cur going to the back of the line. Streams whose body ended
// or was reset leave the line here.
func (c *conn) nextSendLocked(cur *stream, sent int) *stream {
	if c.sendWindow <= 0 {
		return nil
	}
	if cur != nil && cur.dbody != nil && cur.sendWindow > 0 && sent < sendQuantum {
		return cur
	}
	q := c.sendq[:0]
	for _, st := range c.sendq {
		if st.dbody != nil && st != cur {
			q = append(q, st)
		}
	}
	if cur != nil && cur.dbody != nil {
		q = append(q, cur)
	}
	clear(c.sendq[len(q):])
	c.sendq = q
	for _, st := range c.sendq {
		if st.sendWindow > 0 {
			return st
		}
	}
	return nil
}

// sendLoop is the connection's sender: it runs while some stream has a body to send and
// window for it, holding a share of SendMemory and at most one body open, and ends when the
// windows are spent or the bodies sent.
func (c *conn) sendLoop() {
	ok := c.srv.acquireSend(c.ctx, c.remoteAddr)
	if ok {
		defer c.srv.releaseSend()
	}
	bufp := chunkPool.Get().(*[]byte)
	defer chunkPool.Put(bufp)
	s := bodySender{c: c, buf: *bufp}
	defer s.closeBody()
	c.mu.Lock()
	defer c.mu.Unlock()
	if !ok {
		c.senderRunning = false
		return
	}
	for c.werr == nil {
		st := s.nextLocked()
		if st == nil {
			break
		}
		s.sendChunkLocked(st)
	}
	c.senderRunning = false
	if c.werr == nil {
		c.flushLocked()
	}
}

// bodySender is what the connection's sender keeps from one DATA frame to the next: the stream
// it sends from, how much of its quantum that stream has had, and that stream's body, held
// open at the offset it reached. Only sendLoop's goroutine uses it.
type bodySender struct {
	c    *conn
	buf  []byte // a chunk read from a body, sent as one DATA frame
	cur  *stream
	rd   io.ReadCloser // cur's body from cur.dOff on; nil when none is open
	sent int           // what cur sent in its quantum
}

// closeBody closes the body held open, if any.
func (s *bodySender) closeBody() {
	if s.rd != nil {
		s.rd.Close()
		s.rd = nil
	}
}

// nextLocked returns the stream to send from next (see nextSendLocked), keeping the body open
// only while the stream stays the same. With none that has window, it writes out what is
// buffered and returns nil, noting which bodies now wait for the connection's window.
func (s *bodySender) nextLocked() *stream {
	c := s.c
	st := c.nextSendLocked(s.cur, s.sent)
	if st == nil {
		s.closeBody()
		s.cur = nil
		c.flushLocked()
		// Window may have come during the write.
		if st = c.nextSendLocked(nil, 0); st == nil {
			if c.sendWindow <= 0 {
				c.markStalledLocked()
			}
			return nil
		}
	}
	if st != s.cur {
		s.closeBody()
		s.cur, s.sent = st, 0
	} else if s.sent >= sendQuantum {
		s.sent = 0
	}
	return st
}

// markStalledLocked notes that, the connection's window being spent, every body in line waits
// for it from now.
func (c *conn) markStalledLocked() {
	now := time.Now()
	for _, q := range c.sendq {
		if q.stalledSince.IsZero() {
			q.stalledSince = now
		}
	}
}

// sendChunkLocked queues the next DATA frame of st's body: as much as both windows, the peer's
// frame size and a chunk allow, read with c.mu released. A body that cannot be read resets its
// stream. What changed while the lock was released (the stream reset, a SETTINGS frame that
// shrank the window, a write error) is taken into account before the frame is queued.
func (s *bodySender) sendChunkLocked(st *stream) {
	c := s.c
	b, off := st.dbody, st.dOff
	n := min(c.sendWindow, st.sendWindow, st.dLeft, int64(len(s.buf)), int64(c.peerMaxFrame))
	if err := s.readLocked(b, off, n); err != nil {
		s.closeBody()
		if st.dbody == b {
			c.log.LogAttrs(c.ctx, slog.LevelError, "HTTP/2 response body cannot be read",
				slog.String("remote", c.remoteAddr), slog.Int64("offset", off), slog.Any("error", err))
			c.resetLocked(st.id, http2.ErrCodeInternal)
		}
		return
	}
	c.makeRoomLocked(9 + int(n))
	if c.werr != nil {
		return
	}
	if st.dbody != b || st.dOff != off {
		s.closeBody() // reset while the body was read
		return
	}
	if w := min(c.sendWindow, st.sendWindow); w < n {
		// A SETTINGS frame shrank the window meanwhile: send what it allows, and read the
		// rest again from its offset.
		s.closeBody()
		if w <= 0 {
			return
		}
		n = w
	}
	s.queueDataLocked(st, n)
}

// readLocked reads n bytes of body b from offset off into the buffer, opening b there if no
// reader is open, with c.mu released meanwhile.
func (s *bodySender) readLocked(b Body, off, n int64) error {
	s.c.mu.Unlock()
	defer s.c.mu.Lock()
	var err error
	if s.rd == nil {
		s.rd, err = b.Open(off)
	}
	if err == nil {
		_, err = io.ReadFull(s.rd, s.buf[:n])
	}
	return err
}

// queueDataLocked queues the n bytes read as a DATA frame of st, ending the stream with the
// body's last bytes, and takes them from both windows.
func (s *bodySender) queueDataLocked(st *stream, n int64) {
	c := s.c
	last := n == st.dLeft
	var flags http2.Flags
	if last {
		flags = http2.FlagDataEndStream
	}
	c.appendFrameHeader(int(n), http2.FrameData, flags, st.id)
	c.appendOut(s.buf[:n])
	c.sendWindow -= n
	st.sendWindow -= n
	st.dOff += n
	st.dLeft -= n
	st.stalledSince = time.Time{}
	s.sent += int(n)
	c.moved()
	if last {
		s.closeBody()
		c.endDeferredLocked(st)
	} else if min(c.sendWindow, st.sendWindow) <= 0 {
		s.closeBody()
		st.stalledSince = time.Now()
	}
}

// endDeferredLocked forgets a stream whose body the sender has sent whole.
func (c *conn) endDeferredLocked(st *stream) {
	if st.body != nil && !st.body.ended && !st.reset {
		// The response is complete; the rest of the request is not wanted (§8.1).
		c.fr.WriteRSTStream(st.id, http2.ErrCodeNo)
		st.reset = true
	}
	c.closeStreamLocked(st)
}
