package h1

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"unicode/utf8"

	"github.com/dt-cdn/dt/internal/tcpopt"
	"golang.org/x/net/http/httpguts"
)

const (
	// stageSize is how much body a handler may write before its response's length is decided,
	// when the handler does not give one: a body that ends within it gets a Content-Length,
	// a longer one is chunked (net/http holds 2 KiB).
	stageSize = 4 << 10
	// headerReserve is the room made in the output buffer before a header section is added:
	// enough for a typical one, which then needs no write of its own.
	headerReserve = 2 << 10
	// sniffLen is how much of a body http.DetectContentType looks at.
	sniffLen = 512
)

// response is the state of a request's response, which handlers reach through a
// responseWriter. A connection reuses it from one request to the next; the pool (responses)
// passes it between connections.
type response struct {
	// gen counts the requests the state has served and the handlers it has outlived:
	// a responseWriter is live while it holds the current value. It is the one field read
	// by other goroutines (a handler's, after it returned).
	gen    atomic.Uint64
	c      *conn
	req    *http.Request
	header http.Header
	// snapshot is the header as of WriteHeader, when the header section could not be
	// written then (its framing waits on the body); nil otherwise.
	snapshot http.Header
	// block holds fields written after the header's (WriteHeaderBlock); nil for none.
	block *HeaderBlock
	responseFlags
}

// responseFlags is what a response decides along the way, set anew for each request.
type responseFlags struct {
	status      int  // the final status, once WriteHeader is called
	headerSent  bool // the status line and header section are in the output
	isHEAD      bool
	bodyAllowed bool
	clen        int64 // the body's length, or -1 while unknown
	written     int64 // body bytes the handler wrote
	chunked     bool
	closeAfter  bool // the connection ends after this response
	lingerAfter bool // ... and the client may still be sending
	handlerDone bool
	sent100     bool
	// What the request's Connection field asks for, read before the handler runs, as it may
	// change the request's header.
	wantsClose       bool
	wantsKeepAlive10 bool
}

func (w *response) Header() http.Header { return w.header }

func (w *response) WriteHeader(code int) {
	if !w.setStatus(code) {
		return
	}
	if cl, ok := w.header["Content-Length"]; ok {
		if v, err := strconv.ParseInt(strings.TrimSpace(cl[0]), 10, 64); len(cl) == 1 && err == nil && v >= 0 {
			w.clen = v
		} else {
			w.c.log.LogAttrs(w.c.ctx, slog.LevelDebug, "Invalid Content-Length from handler",
				slog.Any("value", cl), slog.String("path", w.req.URL.Path))
			delete(w.header, "Content-Length")
		}
	}
	w.startHeader()
}

// WriteHeaderBlock implements HeaderBlockWriter.
func (w *response) WriteHeaderBlock(code int, hb *HeaderBlock, contentLength int64) {
	if !w.setStatus(code) {
		return
	}
	w.block = hb
	if contentLength >= 0 {
		w.clen = contentLength
	}
	w.startHeader()
}

// setStatus makes code the response's final status and reports true; it reports false, having
// sent a 1xx response or ignored a superfluous call, when code is not one.
func (w *response) setStatus(code int) bool {
	if code < 100 || code > 999 {
		panic("h1: invalid WriteHeader code " + strconv.Itoa(code))
	}
	if w.status != 0 {
		w.c.log.LogAttrs(w.c.ctx, slog.LevelDebug, "Superfluous WriteHeader call",
			slog.Int("code", code), slog.String("path", w.req.URL.Path))
		return false
	}
	if code < 200 && code != http.StatusSwitchingProtocols {
		w.writeInformational(code)
		return false
	}
	w.status = code
	w.bodyAllowed = bodyAllowedForStatus(code)
	if code == http.StatusSwitchingProtocols {
		w.closeAfter = true // there is no protocol to switch to
	}
	return true
}

// startHeader writes the header section once the status and any declared length are known,
// unless its framing or type waits on the body.
func (w *response) startHeader() {
	if !w.bodyAllowed || (w.clen >= 0 && !w.sniffs(w.header)) {
		w.writeHeaderSection(nil)
		return
	}
	// The framing or the type waits on the body: hold on to the header as it is now.
	w.snapshot = w.header.Clone()
}

// writeInformational sends a 1xx response at once, with the header fields set so far (103
// Early Hints). An HTTP/1.0 client is not sent one (RFC 9110 §15.2).
func (w *response) writeInformational(code int) {
	c := w.c
	if !w.req.ProtoAtLeast(1, 1) || c.werr != nil {
		return
	}
	if code == http.StatusContinue {
		w.send100()
		return
	}
	c.out = appendStatusLine(c.out, true, code)
	// RFC 9110 §8.6 and RFC 9112 §6.1: no Content-Length or Transfer-Encoding in a 1xx.
	c.out = appendFields(c.out, w.header, skipLength|skipTransferEncoding)
	c.out = append(c.out, "\r\n"...)
	c.flush()
}

// send100 answers "Expect: 100-continue" once, before the final response.
func (w *response) send100() {
	if w.sent100 || w.headerSent {
		return
	}
	w.sent100 = true
	w.c.out = append(w.c.out, "HTTP/1.1 100 Continue\r\n\r\n"...)
}

func (w *response) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if !w.bodyAllowed {
		return 0, http.ErrBodyNotAllowed
	}
	if w.clen >= 0 && w.written+int64(len(p)) > w.clen {
		return 0, http.ErrContentLength
	}
	w.written += int64(len(p))
	if !w.headerSent {
		if w.clen < 0 && len(w.c.stage)+len(p) <= stageSize {
			w.c.stage = append(w.c.stageBuf(), p...)
			return len(p), nil
		}
		w.writeHeaderSection(p)
		if err := w.writeStage(); err != nil {
			return 0, err
		}
	}
	if w.isHEAD {
		return len(p), nil
	}
	if err := w.writeBody(p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// writeBody frames p as the response's framing says and hands it to the connection.
func (w *response) writeBody(p []byte) error {
	if len(p) == 0 {
		return nil
	}
	c := w.c
	if !w.chunked {
		return c.write(p, nil)
	}
	c.reserve(len(crlf) + 16 + len(crlf))
	c.out = strconv.AppendInt(c.out, int64(len(p)), 16)
	c.out = append(c.out, "\r\n"...)
	return c.write(p, crlf)
}

var crlf = []byte("\r\n")

// writeStage sends the body bytes held before the header section was written.
func (w *response) writeStage() error {
	stage := w.c.stage
	w.c.stage = w.c.stage[:0]
	if w.isHEAD {
		return nil
	}
	return w.writeBody(stage)
}

// Flush sends the header section and the body so far. A response whose length is still
// unknown is chunked from here (or, to an HTTP/1.0 client, ends with the connection).
func (w *response) Flush() {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if !w.headerSent {
		w.writeHeaderSection(nil)
		w.writeStage()
	}
	w.c.flush()
}

// ReadFrom sends a body from src: from a file, by the connection's own ReadFrom (sendfile on
// TCP), once the header section is out.
func (w *response) ReadFrom(src io.Reader) (int64, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	r, limit := src, int64(-1)
	lr, isLimited := src.(*io.LimitedReader)
	if isLimited {
		r, limit = lr.R, lr.N
	}
	// A file is an *os.File, or what io.Copy makes of one (*os.File's WriteTo hands a writer
	// that is not a socket a wrapper that hides WriteTo): net's ReadFrom takes any
	// syscall.Conn to sendfile from, and falls back to copying for what is not a file.
	rf, ok := w.c.nc.(io.ReaderFrom)
	if _, isFile := r.(syscall.Conn); !isFile || !ok || !w.bodyAllowed || w.isHEAD || w.clen < 0 {
		return copyBuffered(w, src)
	}
	var total int64
	// Corked, the header and the file's data leave in full segments, and so do the ends of
	// the sendfile calls (each would otherwise be pushed out short).
	if sc, ok := w.c.nc.(syscall.Conn); ok && tcpopt.SetCork(sc, true) {
		defer tcpopt.SetCork(sc, false)
	}
	if !w.headerSent {
		// The header waits to sniff the type from the body's start, as net/http's does: that
		// much goes by Write.
		head := min(sniffLen, w.clen)
		n, err := copyBuffered(w, io.LimitReader(src, head))
		if err != nil || n < head {
			return n, err
		}
		total = n
	}
	c := w.c
	if err := c.flush(); err != nil {
		return total, err
	}
	if isLimited {
		limit = lr.N // what the head took is gone
	}
	for {
		step := min(int64(sendStep), w.clen-w.written)
		if limit >= 0 {
			step = min(step, limit)
		}
		if step <= 0 {
			break
		}
		if err := c.armWrite(); err != nil {
			return total, c.writeFailed(err)
		}
		n, err := rf.ReadFrom(io.LimitReader(r, step))
		total += n
		w.written += n
		if limit >= 0 {
			limit -= n
		}
		if err != nil {
			return total, c.writeFailed(err)
		}
		if n < step {
			return total, nil // src ended
		}
	}
	if isLimited {
		lr.N = limit
		src = lr
	}
	if limit == 0 {
		return total, nil
	}
	// The declared length is sent; src may still have more, which Write refuses.
	n, err := copyBuffered(w, src)
	return total + n, err
}

var copyBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// copyBuffered copies src to w by Write, hiding w's ReadFrom from io.CopyBuffer.
func copyBuffered(w *response, src io.Reader) (int64, error) {
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	return io.CopyBuffer(struct{ io.Writer }{w}, src, *bp)
}

// finish ends the response once the handler has returned.
func (w *response) finish() {
	w.handlerDone = true
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if !w.headerSent {
		w.writeHeaderSection(nil)
		w.writeStage()
	}
	if w.chunked {
		w.c.out = append(w.c.out, "0\r\n\r\n"...)
	}
	if w.bodyAllowed && !w.isHEAD && w.clen >= 0 && w.written < w.clen {
		// The client waits for bytes that will not come: only closing tells it.
		w.closeAfter = true
	}
	if w.c.srv.closing.Load() {
		w.closeAfter = true
	}
}

// writeHeaderSection decides the response's framing and writes its status line and header
// section to the output. p is the body write that prompted it, if any, for sniffing.
func (w *response) writeHeaderSection(p []byte) {
	if w.headerSent {
		return
	}
	w.headerSent = true
	c := w.c
	c.reserve(headerReserve)
	h := w.header
	if w.snapshot != nil {
		h = w.snapshot
	}
	// The framing is the server's: the handler's Content-Length went into clen, and its
	// Transfer-Encoding is replaced by what is decided here.
	skip := skipLength | skipTransferEncoding | w.decideFraming()
	w.drainRequestBody()
	keepAlive10 := w.decidePersistence(h)
	if w.closeAfter || keepAlive10 {
		skip |= skipConnection
	}
	c.out = w.appendHeaderSection(c.out, h, skip, w.sniffedType(h, p), keepAlive10)
}

// decideFraming decides how the body's end is marked (RFC 9112 §6.3): a Content-Length when
// the length is known (the whole body staged once the handler returned), chunked otherwise,
// the connection's end for HTTP/1.0; nothing for a response that has no body. It returns the
// handler's fields to leave out besides the framing's: Content-Type on a 304.
func (w *response) decideFraming() (skip skipFields) {
	if w.clen < 0 && w.handlerDone && w.bodyAllowed && (!w.isHEAD || len(w.c.stage) > 0) {
		w.clen = int64(len(w.c.stage))
	}
	switch {
	case !w.bodyAllowed:
		if w.status == http.StatusNotModified {
			skip |= skipType
		}
		w.clen = -1
	case w.clen >= 0, w.isHEAD:
	case w.req.ProtoAtLeast(1, 1):
		w.chunked = true
	default:
		// HTTP/1.0 has no chunking: the body ends with the connection.
		w.closeAfter = true
	}
	return skip
}

// decidePersistence decides whether the connection carries another request after this
// response (RFC 9112 §9.3), setting closeAfter when it does not, and reports whether an
// HTTP/1.0 response must say "Connection: keep-alive" for it to.
func (w *response) decidePersistence(h http.Header) (keepAlive10 bool) {
	// Before the HTTP/1.0 keep-alive decision, which must not promise what these take back.
	if hasToken(h["Connection"], "close") || w.c.srv.closing.Load() {
		w.closeAfter = true
	}
	if !w.req.ProtoAtLeast(1, 1) {
		if w.wantsKeepAlive10 && !w.closeAfter &&
			(w.isHEAD || w.clen >= 0 || !w.bodyAllowed) {
			return true
		}
		w.closeAfter = true
	} else if w.wantsClose {
		w.closeAfter = true
	}
	return false
}

// sniffedType returns the Content-Type net/http would detect for a response whose handler set
// none, from the body's first bytes (staged, or p, the first write), or "" for none to add.
func (w *response) sniffedType(h http.Header, p []byte) string {
	if !w.bodyAllowed || !w.sniffs(h) {
		return ""
	}
	body := w.c.stage
	if len(body) == 0 {
		body = p
	}
	if len(body) == 0 {
		return ""
	}
	return http.DetectContentType(body[:min(len(body), sniffLen)])
}

// appendHeaderSection appends the status line and the header section to b: the handler's
// fields but those in skip, then Date, the sniffed Content-Type, and the framing and
// connection fields decided for the response.
func (w *response) appendHeaderSection(b []byte, h http.Header, skip skipFields, sniffed string, keepAlive10 bool) []byte {
	b = appendStatusLine(b, w.req.ProtoAtLeast(1, 1), w.status)
	b = appendFields(b, h, skip)
	if w.block != nil {
		b = append(b, w.block.b...)
	}
	if _, ok := h["Date"]; !ok {
		b = append(b, "Date: "...)
		b = w.c.appendDate(b)
		b = append(b, "\r\n"...)
	}
	if sniffed != "" {
		b = append(b, "Content-Type: "...)
		b = append(b, sniffed...)
		b = append(b, "\r\n"...)
	}
	if w.clen >= 0 && w.bodyAllowed {
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, w.clen, 10)
		b = append(b, "\r\n"...)
	}
	if w.chunked {
		b = append(b, "Transfer-Encoding: chunked\r\n"...)
	}
	switch {
	case w.closeAfter && w.req.ProtoAtLeast(1, 1):
		b = append(b, "Connection: close\r\n"...)
	case keepAlive10:
		b = append(b, "Connection: keep-alive\r\n"...)
	}
	return append(b, "\r\n"...)
}

// drainRequestBody reads what the handler left of the request body, up to maxDrainBytes, so
// that the connection can carry the next request; past that, or when the client waits for a
// 100 Continue it was not sent, the connection ends after the response.
func (w *response) drainRequestBody() {
	rb, ok := w.req.Body.(*requestBody)
	if !ok || rb.eof || w.closeAfter {
		return
	}
	if rb.expect && !w.sent100 {
		w.closeAfter, w.lingerAfter = true, true
		return
	}
	n, err := io.CopyN(io.Discard, rb.r, maxDrainBytes+1)
	if err == io.EOF {
		rb.eof = true
		return
	}
	if n > maxDrainBytes || err != nil {
		w.closeAfter, w.lingerAfter = true, true
	}
}

// requestBody is a request's body as a handler sees it: it answers "Expect: 100-continue" on
// the first read, and Close does not read what is left (the server decides that).
type requestBody struct {
	r      io.ReadCloser
	w      *responseWriter
	expect bool
	eof    bool
	closed bool
}

func (b *requestBody) Read(p []byte) (int, error) {
	if b.closed {
		return 0, http.ErrBodyReadAfterClose
	}
	if b.eof {
		return 0, io.EOF
	}
	if b.expect && b.w != nil {
		if w := b.w.live(); w != nil {
			w.send100()
		}
	}
	n, err := b.r.Read(p)
	if errors.Is(err, io.EOF) {
		b.eof = true
	}
	return n, err
}

func (b *requestBody) Close() error {
	b.closed = true
	return nil
}

// skipFields are the handler's fields the server replaces or drops.
type skipFields uint8

const (
	skipLength skipFields = 1 << iota
	skipTransferEncoding
	skipConnection
	skipType
)

// appendFields appends h's fields. Names that are not valid tokens are left out, and line
// breaks in values become spaces, so that nothing a handler sets can split the response.
func appendFields(b []byte, h http.Header, skip skipFields) []byte {
	for k, vv := range h {
		switch {
		case k == "Content-Length" && skip&skipLength != 0,
			k == "Transfer-Encoding" && skip&skipTransferEncoding != 0,
			k == "Connection" && skip&skipConnection != 0,
			k == "Content-Type" && skip&skipType != 0,
			strings.HasPrefix(k, http.TrailerPrefix),
			!httpguts.ValidHeaderFieldName(k):
			continue
		}
		for _, v := range vv {
			b = append(b, k...)
			b = append(b, ": "...)
			b = appendValue(b, v)
			b = append(b, "\r\n"...)
		}
	}
	return b
}

func appendValue(b []byte, v string) []byte {
	if plainValue(v) {
		return append(b, v...)
	}
	v = strings.TrimSpace(v)
	start := len(b)
	b = append(b, v...)
	for i := start; i < len(b); i++ {
		if b[i] == '\r' || b[i] == '\n' {
			b[i] = ' '
		}
	}
	return b
}

// plainValue reports whether v is written as it is: it holds no CR or LF, and TrimSpace would
// leave it unchanged (it is empty or begins and ends with visible ASCII).
func plainValue(v string) bool {
	if v == "" {
		return true
	}
	if first, last := v[0], v[len(v)-1]; first <= ' ' || first >= utf8.RuneSelf || last <= ' ' || last >= utf8.RuneSelf {
		return false
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c == '\r' || c == '\n' {
			return false
		}
	}
	return true
}

func appendStatusLine(b []byte, http11 bool, code int) []byte {
	if http11 && code == http.StatusOK {
		return append(b, "HTTP/1.1 200 OK\r\n"...) // by far the most common, in one copy
	}
	if http11 {
		b = append(b, "HTTP/1.1 "...)
	} else {
		b = append(b, "HTTP/1.0 "...)
	}
	b = strconv.AppendInt(b, int64(code), 10)
	b = append(b, ' ')
	if text := http.StatusText(code); text != "" {
		b = append(b, text...)
	} else {
		b = append(b, "status code "...)
		b = strconv.AppendInt(b, int64(code), 10)
	}
	return append(b, "\r\n"...)
}

// sniffs reports whether the response, with header h, gets its Content-Type from its body:
// as sniffs says, unless its header block gives a type or an encoding.
func (w *response) sniffs(h http.Header) bool {
	return sniffs(h) && (w.block == nil || !w.block.typed)
}

// sniffs reports whether a response with header h gets its Content-Type from its body, as
// net/http's do: when the handler set none (not even an empty one) and no Content-Encoding.
func sniffs(h http.Header) bool {
	_, haveType := h["Content-Type"]
	// h["Content-Encoding"] rather than Get, which would put the name in canonical form again.
	return !haveType && (len(h["Content-Encoding"]) == 0 || h["Content-Encoding"][0] == "")
}

func bodyAllowedForStatus(code int) bool {
	return code >= 200 && code != http.StatusNoContent && code != http.StatusNotModified
}

// hasToken reports whether a comma-separated field holds token, case-insensitively.
func hasToken(values []string, token string) bool {
	for _, v := range values {
		for part := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(part), token) {
				return true
			}
		}
	}
	return false
}
