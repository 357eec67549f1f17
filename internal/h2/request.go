package h2

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/textproto"
	"net/url"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

var (
	errStreamClosed = errors.New("h2: stream closed")
	errBodyTooLong  = errors.New("h2: request body longer than its content-length")
	errBodyTooShort = errors.New("h2: request body shorter than its content-length")
)

// processHeaders handles a HEADERS frame with its CONTINUATIONs: a new request, which it runs,
// or a request's trailers.
func (c *conn) processHeaders(f *http2.MetaHeadersFrame) (err error, moved bool) {
	id := f.StreamID
	if id%2 != 1 {
		return http2.ConnectionError(http2.ErrCodeProtocol), false // clients open odd streams (§5.1.1)
	}
	c.mu.Lock()
	if st := c.streams[id]; st != nil {
		defer c.mu.Unlock()
		if st.reset {
			return nil, false
		}
		if st.body == nil || st.body.ended {
			return http2.StreamError{StreamID: id, Code: http2.ErrCodeStreamClosed}, false // half-closed (remote)
		}
		return c.processTrailersLocked(st, f), false
	}
	if id <= c.maxClientStreamID {
		c.mu.Unlock()
		return http2.ConnectionError(http2.ErrCodeProtocol), false // stream ids only grow (§5.1.1)
	}
	c.maxClientStreamID = id
	if c.goAwaySent {
		c.fr.WriteRSTStream(id, http2.ErrCodeRefusedStream) // past the GOAWAY's last stream: retry elsewhere
		c.mu.Unlock()
		return nil, false
	}
	if f.HasPriority() && f.Priority.StreamDep == id {
		c.mu.Unlock()
		return http2.StreamError{StreamID: id, Code: http2.ErrCodeProtocol}, false
	}
	if c.open >= c.maxStreams {
		c.fr.WriteRSTStream(id, http2.ErrCodeRefusedStream) // §5.1.2
		c.mu.Unlock()
		return nil, false
	}
	c.mu.Unlock()

	st := &stream{c: c, id: id, declaredLen: -1}
	req, err := c.newRequest(st, f)
	if err != nil {
		return err, false
	}
	h := c.h
	if f.Truncated {
		h = http.HandlerFunc(headerListTooLong)
	}
	c.mu.Lock()
	st.sendWindow = c.peerWindow
	c.streams[id] = st
	c.open++
	c.mu.Unlock()
	return nil, c.runHandler(st, h, req)
}

// processTrailersLocked takes the trailers that end a request body (RFC 9113 §8.1).
func (c *conn) processTrailersLocked(st *stream, f *http2.MetaHeadersFrame) error {
	if !f.StreamEnded() || len(f.PseudoFields()) > 0 {
		return http2.StreamError{StreamID: st.id, Code: http2.ErrCodeProtocol}
	}
	if st.req != nil && st.req.Trailer != nil {
		for _, hf := range f.RegularFields() {
			k := c.canonicalKey(hf.Name)
			if _, declared := st.req.Trailer[k]; declared {
				st.req.Trailer[k] = append(st.req.Trailer[k], hf.Value)
			}
		}
	}
	return st.body.endLocked()
}

// processData handles a DATA frame: a piece of a request body.
func (c *conn) processData(f *http2.DataFrame) error {
	id := f.StreamID
	c.mu.Lock()
	defer c.mu.Unlock()
	if id > c.maxClientStreamID {
		return http2.ConnectionError(http2.ErrCodeProtocol) // an idle stream (§5.1)
	}
	// The whole frame counts against the windows, padding included (§6.9).
	n := int64(f.Length)
	if n > c.recvWindow {
		return http2.ConnectionError(http2.ErrCodeFlowControl)
	}
	c.recvWindow -= n
	c.refundConnLocked(n)
	st := c.streams[id]
	if st == nil || st.reset {
		if st == nil {
			return http2.StreamError{StreamID: id, Code: http2.ErrCodeStreamClosed}
		}
		return nil
	}
	b := st.body
	if b == nil || b.ended {
		return http2.StreamError{StreamID: id, Code: http2.ErrCodeStreamClosed} // half-closed (remote)
	}
	if n > b.window {
		return http2.StreamError{StreamID: id, Code: http2.ErrCodeFlowControl}
	}
	b.window -= n
	data := f.Data()
	b.refund += n - int64(len(data)) // padding is given back at once
	if err := b.addLocked(data); err != nil {
		return http2.StreamError{StreamID: id, Code: http2.ErrCodeProtocol}
	}
	if f.StreamEnded() {
		if err := b.endLocked(); err != nil {
			return err
		}
	}
	b.refundLocked(false)
	return nil
}

// refundConnLocked gives received bytes back to the connection window, in batches.
func (c *conn) refundConnLocked(n int64) {
	c.recvRefund += n
	if c.recvRefund >= connWindowBoost/4 {
		c.fr.WriteWindowUpdate(0, uint32(c.recvRefund))
		c.recvWindow += c.recvRefund
		c.recvRefund = 0
	}
}

// newRequest turns a request header block into an http.Request (RFC 9113 §8.3.1). Errors are
// stream errors: a malformed request resets its stream only.
func (c *conn) newRequest(st *stream, f *http2.MetaHeadersFrame) (*http.Request, error) {
	malformed := http2.StreamError{StreamID: st.id, Code: http2.ErrCodeProtocol}
	ps, ok := readPseudoFields(f)
	if !ok {
		return nil, malformed
	}
	hdr, ok := c.requestHeader(f.RegularFields())
	if !ok {
		return nil, malformed
	}
	authority := ps.authority
	if authority == "" {
		authority = hdr.Get("Host")
	}
	u, ok := requestURL(ps.method, ps.path, authority)
	if !ok {
		return nil, malformed
	}
	ended := f.StreamEnded()
	contentLength, ok := requestContentLength(hdr, ended)
	if !ok {
		return nil, malformed
	}
	r := &http.Request{
		Method:     ps.method,
		URL:        u,
		Proto:      "HTTP/2.0",
		ProtoMajor: 2,
		Header:     hdr,
		Host:       authority,
		RequestURI: ps.path,
		RemoteAddr: c.remoteAddr,
		TLS:        c.tls,
	}
	if ended {
		r.Body = http.NoBody
		r.ContentLength = 0
	} else {
		st.body = &requestBody{st: st, declared: contentLength, window: initialWindow}
		r.Body = st.body
		r.ContentLength = contentLength
		r.Trailer = declaredTrailers(hdr)
	}
	st.req = r
	st.ctx, st.cancel = context.WithCancel(c.ctx)
	return r.WithContext(st.ctx), nil
}

// pseudoFields are a request's pseudo-header fields (RFC 9113 §8.3.1).
type pseudoFields struct {
	method, scheme, authority, path string
}

// readPseudoFields reads a request's pseudo-header fields and reports whether they make a
// well-formed request: the four of §8.3.1 only, and those its method needs (§8.5 for CONNECT).
func readPseudoFields(f *http2.MetaHeadersFrame) (ps pseudoFields, ok bool) {
	for _, hf := range f.PseudoFields() {
		switch hf.Name {
		case ":method":
			ps.method = hf.Value
		case ":scheme":
			ps.scheme = hf.Value
		case ":authority":
			ps.authority = hf.Value
		case ":path":
			ps.path = hf.Value
		default:
			return ps, false // :status, :protocol or unknown (§8.3)
		}
	}
	if ps.method == "CONNECT" {
		return ps, ps.scheme == "" && ps.path == "" && ps.authority != ""
	}
	return ps, ps.method != "" && ps.path != "" && (ps.scheme == "https" || ps.scheme == "http")
}

// requestHeader turns a request's regular fields into its header, and reports whether they are
// allowed in HTTP/2: no connection-specific fields (§8.2.2), TE only as "trailers". Cookie
// fields, which HTTP/2 may split, are joined into one (§8.2.3).
func (c *conn) requestHeader(regular []hpack.HeaderField) (hdr http.Header, ok bool) {
	hdr = make(http.Header, len(regular))
	var cookies []string
	for _, hf := range regular {
		switch hf.Name {
		case "connection", "proxy-connection", "keep-alive", "transfer-encoding", "upgrade":
			return nil, false
		case "te":
			if hf.Value != "trailers" {
				return nil, false
			}
		case "cookie":
			cookies = append(cookies, hf.Value)
			continue
		}
		k := c.canonicalKey(hf.Name)
		hdr[k] = append(hdr[k], hf.Value)
	}
	if len(cookies) > 0 {
		hdr["Cookie"] = []string{strings.Join(cookies, "; ")}
	}
	return hdr, true
}

// requestURL parses a request's target: an authority for CONNECT, "*" for a server-wide
// OPTIONS, else an origin-form path.
func requestURL(method, path, authority string) (*url.URL, bool) {
	switch {
	case method == "CONNECT":
		return &url.URL{Host: authority}, true
	case method == "OPTIONS" && path == "*":
		return &url.URL{Path: "*"}, true
	}
	u, err := url.ParseRequestURI(path)
	return u, err == nil
}

// requestContentLength returns a request's content-length, -1 without one, and reports whether
// it is well-formed: one decimal value, and zero if the headers end the stream (§8.1.1).
func requestContentLength(hdr http.Header, ended bool) (int64, bool) {
	vv := hdr["Content-Length"]
	if len(vv) == 0 {
		return -1, true
	}
	n, err := strconv.ParseUint(vv[0], 10, 63)
	if err != nil || len(vv) > 1 || ended && n != 0 {
		return 0, false
	}
	return int64(n), true
}

// declaredTrailers returns the trailer fields a request declares in its Trailer fields, each
// with no value yet, or nil if it declares none.
func declaredTrailers(hdr http.Header) http.Header {
	vv := hdr["Trailer"]
	if len(vv) == 0 {
		return nil
	}
	tr := make(http.Header)
	for _, v := range vv {
		for k := range strings.SplitSeq(v, ",") {
			if k = textproto.TrimString(k); k != "" {
				tr[http.CanonicalHeaderKey(k)] = nil
			}
		}
	}
	return tr
}

// canonicalKey is the net/http form of an HTTP/2 field name, cached per connection.
func (c *conn) canonicalKey(name string) string {
	if k, ok := commonCanonical[name]; ok {
		return k
	}
	if k, ok := c.canonCache[name]; ok {
		return k
	}
	k := http.CanonicalHeaderKey(name)
	if c.canonCache == nil {
		c.canonCache = make(map[string]string)
	}
	if len(c.canonCache) < 64 {
		c.canonCache[name] = k
	}
	return k
}

// commonCanonical maps common request field names to their canonical form.
var commonCanonical = func() map[string]string {
	m := make(map[string]string)
	for _, k := range []string{
		"accept", "accept-encoding", "accept-language", "authorization", "cache-control",
		"content-length", "content-type", "host", "if-match", "if-modified-since",
		"if-none-match", "if-range", "if-unmodified-since", "origin", "pragma", "priority", "range",
		"referer", "sec-fetch-dest", "sec-fetch-mode", "sec-fetch-site", "sec-fetch-user",
		"sec-ch-ua", "sec-ch-ua-mobile", "sec-ch-ua-platform", "te", "trailer",
		"upgrade-insecure-requests", "user-agent", "via", "x-forwarded-for", "x-forwarded-proto",
		"x-requested-with",
	} {
		m[k] = http.CanonicalHeaderKey(k)
	}
	return m
}()

// runHandler runs h for st on the calling goroutine, which holds the reader role. It reports
// whether the role moved to another goroutine while h ran.
func (c *conn) runHandler(st *stream, h http.Handler, r *http.Request) (moved bool) {
	st.inline = true
	defer func() {
		if v := recover(); v != nil {
			st.handlerPanicked(v)
		}
		st.finish()
		moved = !st.inline
	}()
	h.ServeHTTP(st, r)
	return
}

// handlerPanicked logs a handler's panic (but not http.ErrAbortHandler, its way to abort a
// response) and resets the stream: the response, if begun, is not complete.
func (st *stream) handlerPanicked(v any) {
	if v != http.ErrAbortHandler {
		buf := make([]byte, 16<<10)
		buf = buf[:runtime.Stack(buf, false)]
		st.c.log.LogAttrs(st.c.ctx, slog.LevelError, "HTTP/2 handler panicked",
			slog.String("remote", st.c.remoteAddr), slog.String("panic", fmt.Sprint(v)), slog.String("stack", string(buf)))
	}
	st.abort(http2.ErrCodeInternal)
}

// headerListTooLong answers a request whose header list is over the limit (RFC 6585 §5).
func headerListTooLong(w http.ResponseWriter, _ *http.Request) {
	const msg = "request header fields too large"
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(msg)))
	w.WriteHeader(http.StatusRequestHeaderFieldsTooLarge)
	io.WriteString(w, msg)
}

// requestBody is a request's body as its DATA frames bring it. The reader adds to it under
// the connection's mu; the handler reads it. At most a stream window is ever buffered.
type requestBody struct {
	st       *stream
	buf      []byte
	declared int64 // content-length, or -1
	received int64
	window   int64 // what the peer may still send
	refund   int64 // read, or discarded, and not yet given back by WINDOW_UPDATE
	ended    bool  // END_STREAM seen
	closed   bool  // the handler closed it, or the stream went: data is discarded
	err      error // returned once buf is drained (io.EOF at the end)
}

func (b *requestBody) addLocked(p []byte) error {
	b.received += int64(len(p))
	if b.declared >= 0 && b.received > b.declared {
		b.closeWithErrorLocked(errBodyTooLong)
		return errBodyTooLong
	}
	if b.closed {
		b.refund += int64(len(p))
		return nil
	}
	b.buf = append(b.buf, p...)
	b.st.c.cond.Broadcast()
	return nil
}

// endLocked marks the end of the body (END_STREAM).
func (b *requestBody) endLocked() error {
	b.ended = true
	if b.declared >= 0 && b.received != b.declared {
		b.closeWithErrorLocked(errBodyTooShort)
		return http2.StreamError{StreamID: b.st.id, Code: http2.ErrCodeProtocol}
	}
	if b.err == nil {
		b.err = io.EOF
	}
	b.st.c.cond.Broadcast()
	return nil
}

// refundLocked gives read bytes back to the stream window in batches, or all when force.
func (b *requestBody) refundLocked(force bool) {
	if b.refund == 0 || b.ended || (!force && b.refund < initialWindow/4) {
		return
	}
	b.st.c.fr.WriteWindowUpdate(b.st.id, uint32(b.refund))
	b.window += b.refund
	b.refund = 0
}

func (b *requestBody) Read(p []byte) (int, error) {
	c := b.st.c
	c.mu.Lock()
	defer c.mu.Unlock()
	for len(b.buf) == 0 && b.err == nil {
		if b.closed {
			return 0, errStreamClosed
		}
		if b.st.inline {
			// The rest of the body comes through the reader: give the role away first.
			c.mu.Unlock()
			c.moveReader(b.st)
			c.mu.Lock()
			continue
		}
		c.waitLocked()
	}
	if len(b.buf) == 0 {
		return 0, b.err
	}
	n := copy(p, b.buf)
	b.buf = b.buf[n:]
	if len(b.buf) == 0 {
		b.buf = nil
	}
	b.refund += int64(n)
	b.refundLocked(len(b.buf) == 0)
	return n, nil
}

// Close discards the rest of the body.
func (b *requestBody) Close() error {
	c := b.st.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if !b.closed {
		b.refund += int64(len(b.buf))
		b.buf = nil
		b.closed = true
		if b.err == nil {
			b.err = errStreamClosed
		}
	}
	return nil
}

func (b *requestBody) closeWithErrorLocked(err error) {
	if b.err == nil || b.err == io.EOF && err != errStreamClosed {
		b.err = err
	}
	b.closed = true
	if b.err != io.EOF {
		// A body that ended (END_STREAM) is kept whole for the handler to read, as net/http
		// does: dropping it would make a shorter body read as complete, ending in io.EOF.
		b.buf = nil
	}
	b.st.c.cond.Broadcast()
}
