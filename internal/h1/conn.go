package h1

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/net/http/httpguts"
)

const (
	// readBufferSize is a connection's read buffer: a request's header section is read into
	// it, whole in the common case. It is taken from a pool when a request's first bytes
	// arrive and given back once the connection waits for the next one.
	readBufferSize = 4 << 10
	// outBufferSize is how much output a connection gathers before it writes; a larger body is
	// written at once, with what is gathered, in one writev. Like the read buffer, it is held
	// only from a request to the write of its response.
	outBufferSize = 16 << 10
	// maxOutBuffer is the most the output buffer is kept at between writes: a handler's huge
	// header section may grow it, but not for the rest of the connection.
	maxOutBuffer = 64 << 10
	// sendStep is the most written in one call, so that SendTimeout bounds the progress of
	// each step rather than the whole body: at the default minute, a client that takes less
	// than about 5 KB/s is cut off.
	sendStep = 256 << 10
	// headerSlack is read beyond MaxHeaderBytes before a header section is called too large,
	// as net/http does (the limit is on the fields, not the buffer that happens to hold them).
	headerSlack = 4 << 10
	// maxDrainBytes is how much of a request body the handler left unread is read and thrown
	// away to keep the connection; past that it is closed (net/http's figure).
	maxDrainBytes = 256 << 10
	// lingerTimeout bounds the wait for the client to close after a response the connection
	// ends with, so that unread request bytes do not make the kernel reset the connection
	// before the client has read the response.
	lingerTimeout = 500 * time.Millisecond
	// errorWriteTimeout bounds the write of an error response to a client that sent a bad
	// request.
	errorWriteTimeout = time.Second
)

// The states of a connection's reader, which choose its read deadline.
const (
	readingIdle = iota // waiting for a request: IdleTimeout
	readingHead        // in a request's header section: ReadHeaderTimeout from its start
	readingBody        // a handler reads the request body: IdleTimeout from each read
)

// staleDeadline stands for a read deadline set behind the reader's back: whatever the next
// read wants differs from it.
var staleDeadline = time.Unix(1, 0)

// errServerClosing ends a connection that waits for a request once the server shuts down.
var errServerClosing = errors.New("h1: server closing")

// conn is one HTTP/1.x connection. Everything but idle belongs to the connection's goroutine.
//
// Between requests a connection holds no buffer: an idle keep-alive connection costs its
// goroutine, its socket and this struct, not the 20 KiB of buffers a request needs (see
// awaitRequest).
type conn struct {
	srv        *Server
	nc         net.Conn
	raw        syscall.RawConn // nc's, to wait for a request without a buffer; nil if nc has none
	ctx        context.Context
	cancel     context.CancelFunc
	baseReq    *http.Request // holds ctx for parseHead's requests to copy
	remoteAddr string
	log        *slog.Logger

	br    *bufio.Reader // from readers while a request is read or buffered; nil in between
	rawFD int           // ≥0 while awaitRequest reads without blocking: the socket's descriptor
	// tryRead as a func value, made once: a method value made per request would be allocated
	// per request.
	tryReadFn func(fd uintptr) bool
	awaited   *bufio.Reader // what tryRead read, for readFirst
	awaitErr  error
	waitArmed bool        // the read deadline of readFirst's wait is set
	outp      *[]byte     // from outBufs while a response is gathered; nil in between
	out       []byte      // output not yet written, in *outp or in what a large header grew
	bufs      net.Buffers // scratch for writev, over vecs
	vecs      [3][]byte
	werr      error     // the first write error: the connection is done
	stagep    *[]byte   // from stageBufs once a response needs stage
	stage     []byte    // body bytes held while a response's length is unknown
	rs        *response // from responses once a request is read; nil while idle
	// nextWriter is where the next response's handle goes, allocated with its request by
	// parseHeadInto; nil to allocate one.
	nextWriter *responseWriter

	// idle is set while the reader waits for the first byte of a request, for Shutdown.
	idle atomic.Bool

	readState int
	// headStart is when the request's head began, for ReadHeaderTimeout: the accept, for a
	// connection's first request. For a later one it is zero until the reader first has to
	// wait for more of the head, and then that time: the head's first bytes were read just
	// before, so the bound is the same but for their parsing, and a head that arrives whole
	// (nearly every one) costs no reading of the clock.
	headStart  time.Time
	headLimit  int64 // bytes left before the header section is too large; <0 when not reading one
	hitLimit   bool
	readArmed  time.Time // the read deadline set on nc (zero: none)
	writeArmed time.Time
	afterPOST  bool // the last request was a POST
	// datePos is where in out a Date value waits to be written (appendDate); 0 for none.
	datePos int
}

// The buffers a connection takes while it works on a request, shared by all connections:
// under load only the connections with a request in hand hold one.
var (
	readers   = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, readBufferSize) }}
	outBufs   = sync.Pool{New: func() any { b := make([]byte, 0, outBufferSize); return &b }}
	stageBufs = sync.Pool{New: func() any { b := make([]byte, 0, stageSize); return &b }}
)

// connReader is what the connection's bufio.Reader reads from.
type connReader struct{ c *conn }

func (s *Server) newConn(ctx context.Context, nc net.Conn) *conn {
	ctx = context.WithValue(ctx, http.LocalAddrContextKey, nc.LocalAddr())
	if s.ConnContext != nil {
		ctx = s.ConnContext(ctx, nc)
	}
	c := &conn{
		srv:        s,
		nc:         nc,
		remoteAddr: nc.RemoteAddr().String(),
		log:        s.logger(),
		rawFD:      -1,
		headLimit:  -1,
		readState:  readingHead,
		headStart:  time.Now(),
	}
	if c.raw = rawConnOf(nc); c.raw != nil {
		c.tryReadFn = c.tryRead
	}
	c.ctx, c.cancel = context.WithCancel(ctx)
	c.baseReq = baseRequest(c.ctx)
	return c
}

// serve runs the connection: read a request, answer it, until either side ends it.
func (c *conn) serve() {
	defer c.releaseBuffers() // last: nothing reads or writes them once nc is closed
	defer c.nc.Close()
	defer c.cancel()
	for first := true; ; first = false {
		if c.br == nil || c.br.Buffered() == 0 {
			if !first {
				c.readState = readingIdle
			}
			if err := c.awaitRequest(); err != nil {
				c.answerBadRequest(err)
				return
			}
		} else {
			// Pipelined: the next request is already here.
			c.readState, c.headStart = readingHead, time.Time{}
		}
		req, err := c.readRequest()
		if err != nil {
			c.answerBadRequest(err)
			return
		}
		c.takeOut()
		hw := c.newResponse(req)
		ok := c.runHandler(hw)
		w := hw.r
		w.retire()
		if !ok {
			c.flush()
			return
		}
		w.finish()
		if w.closeAfter || c.werr != nil {
			c.end(w.lingerAfter || c.br.Buffered() > 0)
			return
		}
	}
}

// runHandler calls the handler; it reports false if the handler panicked, which ends the
// connection as it stands (what was written is sent; the client sees the response cut short).
func (c *conn) runHandler(w *responseWriter) (ok bool) {
	defer func() {
		if v := recover(); v != nil {
			if v != http.ErrAbortHandler {
				buf := make([]byte, 64<<10)
				buf = buf[:runtime.Stack(buf, false)]
				c.log.LogAttrs(c.ctx, slog.LevelError, "Handler panicked",
					slog.String("remote", c.remoteAddr), slog.Any("panic", v), slog.String("stack", string(buf)))
			}
			ok = false
		}
	}()
	c.readState = readingBody
	h, req := c.srv.Handler, w.r.req
	if req.RequestURI == "*" && req.Method == http.MethodOptions && !c.srv.DisableGeneralOptionsHandler {
		h = generalOptions
	}
	h.ServeHTTP(w, req)
	return true
}

// generalOptions answers "OPTIONS *", a question about the server in general (RFC 9110
// §9.3.7), as net/http's server does: 200, no body. A request body is drained as any other.
var generalOptions = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Length", "0")
})

// end finishes a connection after its last response: the output is written, and when the
// client may still be sending (linger), the sending side is shut first and the client given a
// moment to close, so that its unread bytes do not make the kernel reset the connection before
// the response is read.
func (c *conn) end(linger bool) {
	if c.flush() == nil && linger {
		c.linger()
	}
}

// linger shuts the sending side and waits, briefly, for the client to close.
func (c *conn) linger() {
	cw, ok := c.nc.(interface{ CloseWrite() error })
	if !ok || cw.CloseWrite() != nil {
		return
	}
	c.nc.SetReadDeadline(time.Now().Add(lingerTimeout))
	io.Copy(io.Discard, c.nc)
}

// readRequest reads the next request and checks it as net/http's server does.
func (c *conn) readRequest() (*http.Request, error) {
	if c.afterPOST {
		// RFC 9112 §2.2: a client may send a CRLF after a POST body; it is skipped.
		peek, _ := c.br.Peek(4)
		c.br.Discard(leadingCRLF(peek))
	}
	// A head of the common shape that has arrived whole is parsed where it lies; any other
	// goes to net/http's parser (parseHead says why this gives the same request).
	buffered, _ := c.br.Peek(c.br.Buffered())
	if p, n, ok := parseHeadInto(c.baseReq, buffered); ok {
		c.br.Discard(n)
		req := &p.req
		c.afterPOST = req.Method == http.MethodPost
		req.RemoteAddr = c.remoteAddr
		c.nextWriter = &p.writer
		return req, nil
	}
	return c.readRequestSlow()
}

// readRequestSlow reads the next request with http.ReadRequest and checks it.
func (c *conn) readRequestSlow() (*http.Request, error) {
	c.headLimit = int64(cmp.Or(c.srv.MaxHeaderBytes, DefaultMaxHeaderBytes)) + headerSlack
	c.hitLimit = false
	req, err := http.ReadRequest(c.br)
	c.headLimit = -1
	if err != nil {
		if c.hitLimit {
			return nil, &statusError{http.StatusRequestHeaderFieldsTooLarge, ""}
		}
		return nil, err
	}
	c.afterPOST = req.Method == http.MethodPost
	if err := checkRequest(req); err != nil {
		return nil, err
	}
	_, hasExpect := req.Header["Expect"]
	req = req.WithContext(c.ctx)
	req.RemoteAddr = c.remoteAddr
	if req.Body != http.NoBody {
		req.Body = &requestBody{r: req.Body, expect: hasExpect && req.ProtoAtLeast(1, 1)}
	}
	return req, nil
}

// checkRequest checks a request from http.ReadRequest as net/http's server does.
func checkRequest(req *http.Request) error {
	if req.ProtoMajor != 1 {
		return &statusError{http.StatusHTTPVersionNotSupported, "unsupported protocol version"}
	}
	// http.ReadRequest has taken Host out of the header (refusing more than one) and into
	// req.Host, from the request target in absolute form if there is one. An HTTP/1.1 request
	// without it is refused (RFC 9112 §3.2), and with it an empty one: a request this server
	// cannot place.
	if req.Host == "" && req.ProtoAtLeast(1, 1) && req.Method != http.MethodConnect {
		return &statusError{http.StatusBadRequest, "missing required Host header"}
	}
	if !httpguts.ValidHostHeader(req.Host) {
		return &statusError{http.StatusBadRequest, "malformed Host header"}
	}
	for k, vv := range req.Header {
		if !httpguts.ValidHeaderFieldName(k) {
			return &statusError{http.StatusBadRequest, "invalid header name"}
		}
		for _, v := range vv {
			if !httpguts.ValidHeaderFieldValue(v) {
				return &statusError{http.StatusBadRequest, "invalid header value"}
			}
		}
	}
	// RFC 9110 §10.1.1: 100-continue is the only expectation; another is answered 417.
	if expect, ok := req.Header["Expect"]; ok && (len(expect) != 1 || !strings.EqualFold(expect[0], "100-continue")) {
		return &statusError{http.StatusExpectationFailed, ""}
	}
	return nil
}

func leadingCRLF(b []byte) int {
	n := 0
	for _, ch := range b {
		if ch != '\r' && ch != '\n' {
			break
		}
		n++
	}
	return n
}

// statusError is a request the server answers itself, with code and a reason.
type statusError struct {
	code   int
	reason string
}

func (e *statusError) Error() string {
	return fmt.Sprintf("h1: %d %s: %s", e.code, http.StatusText(e.code), e.reason)
}

// answerBadRequest answers a request that could not be read, when the client is still there to
// be told, then ends the connection.
func (c *conn) answerBadRequest(err error) {
	if errors.Is(err, io.EOF) || errors.Is(err, errServerClosing) || c.werr != nil {
		return // the client closed between requests, or the server is closing
	}
	// Not every net.Error is the connection's: a request target that does not parse is a
	// *url.Error, which is one too.
	var ne net.Error
	var oe *net.OpError
	if errors.As(err, &oe) || (errors.As(err, &ne) && ne.Timeout()) {
		return // a timeout, or the connection failed: nobody to answer
	}
	c.log.LogAttrs(c.ctx, slog.LevelDebug, "Bad request", slog.String("remote", c.remoteAddr), slog.Any("error", err))
	code, reason := http.StatusBadRequest, ""
	var se *statusError
	switch {
	case errors.As(err, &se):
		code, reason = se.code, se.reason
	case strings.HasPrefix(err.Error(), "unsupported transfer encoding"),
		strings.HasPrefix(err.Error(), "too many transfer encodings"):
		// RFC 9112 §6.1: a transfer coding the server does not understand is answered 501.
		// net/http's parser reports it with these texts and an unexported type.
		code = http.StatusNotImplemented
	}
	text := fmt.Sprint(code, " ", http.StatusText(code))
	if reason != "" {
		text += ": " + reason
	}
	if c.flush() != nil { // the responses before it, if pipelined
		return
	}
	c.nc.SetWriteDeadline(time.Now().Add(errorWriteTimeout))
	if _, err := io.WriteString(c.nc, "HTTP/1.1 "+text+"\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"+text); err == nil {
		c.linger()
	}
}

// Read reads from the connection for the request parser and for request bodies. Output
// gathered so far is written first: the connection is about to wait for the client, which may
// be waiting for it.
func (r connReader) Read(p []byte) (int, error) {
	c := r.c
	if c.rawFD >= 0 {
		return c.readNow(p)
	}
	if err := c.flush(); err != nil {
		return 0, err
	}
	if c.headLimit >= 0 {
		if c.headLimit == 0 {
			c.hitLimit = true
			return 0, io.EOF
		}
		if int64(len(p)) > c.headLimit {
			p = p[:c.headLimit]
		}
	}
	if err := c.armRead(); err != nil {
		return 0, err
	}
	n, err := c.nc.Read(p)
	if c.headLimit >= 0 {
		c.headLimit -= int64(n)
	}
	return n, err
}

// awaitRequest waits for the first bytes of the next request and reads them into a read
// buffer, holding no buffer while it waits: the output gathered so far is written and the
// buffers go back to their pools first. On a socket it waits for readiness (the runtime's
// poller) and takes a read buffer only to read what has arrived, so a connection that waits
// costs no buffer at all; on another connection it holds a read buffer while it waits.
func (c *conn) awaitRequest() error {
	if err := c.flush(); err != nil {
		return err
	}
	// On a socket the buffers go back to their pools, the wait's read deadline is set and the
	// connection counts as idle once the socket is found empty (readyWait), so that a request
	// already there costs neither the pools nor a reading of the clock.
	if c.raw == nil {
		if err := c.readyWait(); err != nil {
			c.idle.Store(false)
			return err
		}
	} else if c.srv.closing.Load() {
		return errServerClosing
	}
	br, err := c.readFirst()
	c.idle.Swap(false) // a swap, for idle_test's ordering of its reads before what follows
	if c.srv.closing.Load() {
		if err != nil {
			return errServerClosing
		}
		// Shutdown may have set a past deadline that the read beat: arm the next read anew.
		c.readArmed = staleDeadline
	}
	if err != nil {
		return err
	}
	c.br = br
	if c.readState == readingIdle {
		c.readState, c.headStart = readingHead, time.Time{}
	}
	return nil
}

// readFirst returns a read buffer holding the first bytes of a request, waiting for them.
func (c *conn) readFirst() (*bufio.Reader, error) {
	if c.raw == nil {
		br := readers.Get().(*bufio.Reader)
		br.Reset(connReader{c})
		if _, err := br.Peek(1); err != nil {
			readers.Put(br)
			return nil, err
		}
		return br, nil
	}
	// The raw read calls tryRead again each time the socket turns readable, until it returns
	// true; it returns the poller's errors (a deadline, a closed connection) itself.
	c.waitArmed = false
	err := c.raw.Read(c.tryReadFn)
	if err != nil && !c.waitArmed && errors.Is(err, os.ErrDeadlineExceeded) {
		// The deadline of the request before had passed, and the raw read refused to start
		// before tryRead could set the wait's own: set it, and wait.
		c.waitArmed = true
		if err := c.readyWait(); err != nil {
			return nil, err
		}
		err = c.raw.Read(c.tryReadFn)
	}
	if err != nil {
		return nil, err
	}
	br, err := c.awaited, c.awaitErr
	c.awaited, c.awaitErr = nil, nil
	return br, err
}

// tryRead is readFirst's step on a socket: it reads what has arrived into the read buffer (the
// connection's, or one from the pool). It reports whether the wait is over; when nothing had
// arrived, the first time, it readies the connection to wait (readyWait).
func (c *conn) tryRead(fd uintptr) bool {
	if c.waitArmed {
		// Woken: the connection is no longer idle for Shutdown, which, finding it busy, waits
		// for it to answer what arrived.
		c.idle.Swap(false)
	}
	if c.br == nil {
		c.br = readers.Get().(*bufio.Reader)
		c.br.Reset(connReader{c})
	}
	c.rawFD = int(fd)
	_, err := c.br.Peek(1)
	c.rawFD = -1
	c.awaited, c.awaitErr = c.br, err
	if !errors.Is(err, errWouldBlock) {
		return true
	}
	c.awaited = nil
	if !c.waitArmed {
		c.waitArmed = true
		if err := c.readyWait(); err != nil {
			c.awaitErr = err
			return true
		}
	}
	return false
}

// readyWait readies the connection to wait for its next request: its buffers go back to their
// pools, its read deadline is set, and it counts as idle, for Shutdown to end the wait. The
// closing flag is checked after the deadline is set and the idle flag stored: Shutdown sets its
// flag, then a past deadline on the idle connections, so either this sees the flag or the wait
// sees Shutdown's deadline.
func (c *conn) readyWait() error {
	c.releaseBuffers()
	if err := c.armRead(); err != nil {
		return err
	}
	c.idle.Store(true)
	if c.srv.closing.Load() {
		return errServerClosing
	}
	return nil
}

// readNow reads what the socket holds without waiting: errWouldBlock when it holds nothing.
func (c *conn) readNow(p []byte) (int, error) {
	n, err := readFD(c.rawFD, p)
	switch {
	case err != nil && !errors.Is(err, errWouldBlock):
		return 0, &net.OpError{Op: "read", Net: "tcp", Source: c.nc.LocalAddr(), Addr: c.nc.RemoteAddr(), Err: err}
	case err != nil:
		return 0, err
	case n == 0 && len(p) > 0:
		return 0, io.EOF
	}
	return n, nil
}

// takeOut takes an output buffer for a response, unless the connection holds one already.
func (c *conn) takeOut() {
	if c.outp == nil {
		c.outp = outBufs.Get().(*[]byte)
		c.out = (*c.outp)[:0]
	}
}

// stageBuf returns the stage, with a buffer from the pool if it has none.
func (c *conn) stageBuf() []byte {
	if c.stagep == nil {
		c.stagep = stageBufs.Get().(*[]byte)
		c.stage = (*c.stagep)[:0]
	}
	return c.stage
}

// releaseBuffers gives the connection's buffers back to their pools once nothing is buffered
// in them. A read buffer that holds a pipelined request is kept.
func (c *conn) releaseBuffers() {
	if c.br != nil && c.br.Buffered() == 0 {
		c.br.Reset(nil)
		readers.Put(c.br)
		c.br = nil
	}
	if c.outp != nil && len(c.out) == 0 {
		outBufs.Put(c.outp)
		c.outp, c.out = nil, nil
	}
	if c.rs != nil {
		c.rs.release()
		c.rs = nil
	}
	if c.stagep != nil && cap(c.stage) <= stageSize {
		*c.stagep = c.stage[:0]
		stageBufs.Put(c.stagep)
	}
	c.stagep, c.stage = nil, nil
}

// armRead sets the read deadline the reader's state calls for. A sliding deadline is moved only
// when it is off by more than an eighth of its timeout, so that a busy connection does not
// reset it on every request.
func (c *conn) armRead() error {
	switch c.readState {
	case readingHead:
		want := time.Time{}
		if d := c.srv.ReadHeaderTimeout; d > 0 {
			if c.headStart.IsZero() {
				c.headStart = time.Now()
			}
			want = c.headStart.Add(d)
		}
		if want.Equal(c.readArmed) {
			return nil
		}
		c.readArmed = want
		return c.nc.SetReadDeadline(want)
	default:
		var now time.Time
		if c.srv.IdleTimeout > 0 {
			now = time.Now()
		}
		return slide(c.nc.SetReadDeadline, &c.readArmed, c.srv.IdleTimeout, now)
	}
}

// armWrite sets the write deadline before output is written, and dates the header section
// in the output that waits for it: one reading of the clock serves both.
func (c *conn) armWrite() error {
	var now time.Time
	if c.datePos > 0 || c.srv.SendTimeout > 0 {
		now = time.Now()
	}
	c.fillDate(now)
	return slide(c.nc.SetWriteDeadline, &c.writeArmed, c.srv.SendTimeout, now)
}

// appendDate appends a Date field value to b, the output, as a placeholder that armWrite fills
// just before the output is written, with the time it reads for the write deadline. A
// placeholder still unfilled (a pipelined response's, gathered with this one) is filled now.
func (c *conn) appendDate(b []byte) []byte {
	if c.datePos > 0 {
		c.fillDate(time.Now())
	}
	c.datePos = len(b)
	return append(b, datePlaceholder[:]...)
}

// fillDate writes the Date value for now over the output's placeholder, if one waits.
func (c *conn) fillDate(now time.Time) {
	if c.datePos > 0 && c.datePos+dateLen <= len(c.out) {
		copy(c.out[c.datePos:], c.srv.date(now))
	}
	c.datePos = 0
}

// datePlaceholder holds the place of a Date value until the output is written.
var datePlaceholder [dateLen]byte

// slide keeps a deadline between d·7/8 and d from now (none when d is zero), calling set only
// when it has to move.
func slide(set func(time.Time) error, armed *time.Time, d time.Duration, now time.Time) error {
	if d <= 0 {
		if armed.IsZero() {
			return nil
		}
		*armed = time.Time{}
		return set(time.Time{})
	}
	want := now.Add(d)
	if !armed.IsZero() && !armed.After(want) && armed.After(want.Add(-d/8)) {
		return nil
	}
	*armed = want
	return set(want)
}

// flush writes the gathered output.
func (c *conn) flush() error {
	if c.werr != nil || len(c.out) == 0 {
		return c.werr
	}
	if err := c.armWrite(); err != nil {
		return c.writeFailed(err)
	}
	_, err := c.nc.Write(c.out)
	c.resetOut()
	if err != nil {
		return c.writeFailed(err)
	}
	return nil
}

// resetOut empties the output buffer once written, going back to the pool's buffer if a large
// header grew it past maxOutBuffer.
func (c *conn) resetOut() {
	if cap(c.out) > maxOutBuffer && c.outp != nil {
		c.out = (*c.outp)[:0]
		return
	}
	c.out = c.out[:0]
}

// reserve writes the gathered output if n more bytes would not fit the buffer, so that a run
// of pipelined responses does not grow it.
func (c *conn) reserve(n int) error {
	if len(c.out)+n <= cap(c.out) {
		return nil
	}
	return c.flush()
}

// write sends the gathered output and then p, in one writev when p does not fit the buffer,
// in steps of sendStep when p is larger. after (at most a chunk's CRLF) follows p.
func (c *conn) write(p []byte, after []byte) error {
	if c.werr != nil {
		return c.werr
	}
	if len(c.out)+len(p)+len(after) <= cap(c.out) {
		c.out = append(c.out, p...)
		c.out = append(c.out, after...)
		return nil
	}
	for len(p) > sendStep {
		if err := c.writev(p[:sendStep], nil); err != nil {
			return err
		}
		p = p[sendStep:]
	}
	return c.writev(p, after)
}

func (c *conn) writev(p, after []byte) error {
	if err := c.armWrite(); err != nil {
		return c.writeFailed(err)
	}
	c.bufs = append(c.vecs[:0], c.out, p)
	if len(after) > 0 {
		c.bufs = append(c.bufs, after)
	}
	_, err := c.bufs.WriteTo(c.nc)
	c.vecs = [3][]byte{} // no reference to the handler's bytes stays behind
	c.resetOut()
	if err != nil {
		return c.writeFailed(err)
	}
	return nil
}

// writeFailed records the connection's first write error, which ends it, and tells
// OnSendTimeout when SendTimeout is what ended it.
func (c *conn) writeFailed(err error) error {
	if c.werr != nil {
		return err
	}
	c.werr = err
	if c.srv.OnSendTimeout != nil && c.srv.SendTimeout > 0 && errors.Is(err, os.ErrDeadlineExceeded) {
		c.srv.OnSendTimeout()
	}
	return err
}
