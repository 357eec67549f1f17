package static

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"os"
	"strconv"
	"time"

	"github.com/dt-cdn/dt/internal/h2"
	"github.com/dt-cdn/dt/internal/sendconn"
)

// serveFile answers with a file of the site: status is 200, or the error status of a page such
// as 404.html (which gets no preconditions, ranges or validators: RFC 9110 §13.2.1 and §14.2
// apply them to what would be a 200).
//
// It does not use http.ServeContent, whose logic it follows step by step (conditional.go,
// ranges.go): ServeContent answers a malformed Range with 416 where RFC 9110 §14.2 says to
// ignore it, cannot keep ranges to the raw content while negotiating encodings, and formats
// Last-Modified and Content-Length on every request; here they are precomputed per deploy.
//
// blocks, if not nil, are the header blocks kept for f under hs (see headFor).
func (h *Handler) serveFile(w http.ResponseWriter, r *http.Request, s *Site, f *file, hs *headerSet, blocks *repBlocks, status int) outcome {
	hdr := w.Header()
	ae := parseAcceptEncoding(r.Header[hAcceptEncoding])
	rangeLines := r.Header[hRange]
	// Range is defined for GET only (RFC 9110 §14.2) and applies to the raw content here.
	ranged := status == http.StatusOK && r.Method == http.MethodGet && len(rangeLines) > 0
	var rp *rep
	if ranged && ae.identityWeight() > 0 {
		rp = f.reps[identity]
	} else {
		var ok bool
		if rp, ok = ae.choose(&f.reps); !ok {
			if status != http.StatusOK {
				rp = f.reps[identity] // an error page is sent anyway (RFC 9110 §12.5.3)
			} else {
				return h.writeError(w, r, http.StatusNotAcceptable, f)
			}
		}
		ranged = ranged && rp.coding == identity
	}
	if status == http.StatusOK {
		v := validators{etag: rp.etag, modTime: s.modTime, hasMod: s.lastModified != nil}
		switch checkPreconditions(r.Header, v) {
		case http.StatusNotModified:
			// RFC 9110 §15.4.5: the fields a 200 would have had that guide caches (ETag,
			// Cache-Control, Vary, …), no representation metadata.
			setFields(hdr, hs.notModified)
			hdr[hNosniff] = h.vNosniff
			hdr[hETag] = rp.etagH
			w.WriteHeader(http.StatusNotModified)
			return outcome{status: http.StatusNotModified, coding: rp.coding}
		case http.StatusPreconditionFailed:
			return h.writeError(w, r, http.StatusPreconditionFailed, f)
		}
		// Range needs exactly one field; If-Range false means "send it all".
		if ranged && len(rangeLines) == 1 && checkIfRange(r.Header, v) != condFalse {
			ranges, res := parseRange(rangeLines[0], rp.size)
			switch res {
			case rangeUnsatisfiable:
				hdr[hContentRange] = []string{"bytes */" + rp.lenH[0]}
				return h.writeError(w, r, http.StatusRequestedRangeNotSatisfiable, f)
			case rangePartial:
				h.setFileHeaders(hdr, s, hs, rp, status)
				return h.serveRanges(w, r, s, f, rp, hs, ranges)
			}
		}
	}
	hd := h.headFor(w, s, hs, rp, blocks, status)
	if r.Method == http.MethodHead {
		hd.write(w, status)
		return outcome{status: status, coding: rp.coding}
	}
	if fs, ok := w.(sendconn.FileSender); ok && h.sendsFile(rp, rp.size) {
		if o, ok := h.serveSendfile(w, r, fs, s, f, rp, hd, status); ok {
			return o
		}
	}
	b, err := h.openBody(s, rp, 0, rp.size)
	if err != nil {
		h.logBlobError(s, f, err)
		clearFileHeaders(hdr)
		return h.writeError(w, r, http.StatusInternalServerError, nil)
	}
	hd.write(w, status)
	uncork := noUncork
	if hd.hb == nil {
		// A response by header block is package h1's, which sends a header and a body in
		// one write of its own: nothing to cork.
		uncork = sendconn.Cork(w, r, b.n)
	}
	n, err := h.sendBody(w, r, s, b)
	uncork()
	if err != nil {
		h.logBodyError(s, f, err)
	}
	return outcome{status: status, coding: rp.coding, bytes: n}
}

func noUncork() {}

// setFileHeaders sets the headers of a response that carries (part of) a representation.
func (h *Handler) setFileHeaders(hdr http.Header, s *Site, hs *headerSet, rp *rep, status int) {
	hdr[hNosniff] = h.vNosniff
	setFields(hdr, hs.full)
	if rp.encH != nil {
		hdr[hContentEncoding] = rp.encH
	}
	if status == http.StatusOK {
		hdr[hETag] = rp.etagH
		if rp.coding == identity {
			// Ranges are served on the raw content only; advertising them on an encoded
			// response would promise ranges of the encoded bytes (RFC 9110 §14.3).
			hdr[hAcceptRanges] = h.vAcceptRanges
		}
		if s.lastModified != nil {
			hdr[hLastModified] = s.lastModified
		}
	}
}

// clearFileHeaders removes what setFileHeaders set before an error response replaces it.
func clearFileHeaders(hdr http.Header) {
	for k := range hdr {
		if k != hNosniff {
			delete(hdr, k)
		}
	}
}

func setFields(hdr http.Header, fields []field) {
	for _, f := range fields {
		hdr[f.key] = f.values
	}
}

// serveRanges sends a 206 (RFC 9110 §15.3.7): one range as such, several as
// multipart/byteranges (RFC 9110 §14.6). Called for GET only.
func (h *Handler) serveRanges(w http.ResponseWriter, r *http.Request, s *Site, f *file, rp *rep, hs *headerSet, ranges []byteRange) outcome {
	hdr := w.Header()
	if len(ranges) == 1 {
		br := ranges[0]
		if fs, ok := w.(sendconn.FileSender); ok && h.sendsFile(rp, br.length) {
			if o, ok := h.serveRangeSendfile(w, r, fs, s, f, rp, br); ok {
				return o
			}
		}
		b, err := h.openBody(s, rp, br.start, br.length)
		if err != nil {
			h.logBlobError(s, f, err)
			clearFileHeaders(hdr)
			return h.writeError(w, r, http.StatusInternalServerError, nil)
		}
		hdr[hContentRange] = []string{formatContentRange(br, rp.size)}
		hdr[hContentLength] = []string{strconv.FormatInt(br.length, 10)}
		w.WriteHeader(http.StatusPartialContent)
		n, err := h.sendBody(w, r, s, b)
		if err != nil {
			h.logBodyError(s, f, err)
		}
		return outcome{status: http.StatusPartialContent, bytes: n}
	}
	partHeader := func(br byteRange) textproto.MIMEHeader {
		return textproto.MIMEHeader{
			hContentType:  {hs.contentType},
			hContentRange: {formatContentRange(br, rp.size)},
		}
	}
	// The length of a multipart body is known in advance: the part headers are counted by
	// writing them once to a counter, with the boundary the real writer then uses.
	var size countingWriter
	mw := multipart.NewWriter(&size)
	for _, br := range ranges {
		mw.CreatePart(partHeader(br)) // writes to a counter: cannot fail
		size += countingWriter(br.length)
	}
	mw.Close()
	boundary := mw.Boundary()
	hdr[hContentType] = []string{"multipart/byteranges; boundary=" + boundary}
	hdr[hContentLength] = []string{strconv.FormatInt(int64(size), 10)}
	w.WriteHeader(http.StatusPartialContent)

	if bs, ok := w.(h2.BodySender); ok {
		// The part headers go in memory and the ranges stay spans of the representation,
		// read when the client has window, as for one range.
		var sb segmentedBody
		mw = multipart.NewWriter(&sb)
		if err := mw.SetBoundary(boundary); err != nil {
			panic(fmt.Sprintf("static: multipart boundary %q: %v", boundary, err)) // multipart made it
		}
		for _, br := range ranges {
			mw.CreatePart(partHeader(br)) // writes to memory: cannot fail
			sb.addSpan(s, rp, br.start, br.length)
		}
		mw.Close()
		sb.flush()
		if err := bs.SendBody(&sb); err != nil {
			h.logBodyError(s, f, err)
			return outcome{status: http.StatusPartialContent}
		}
		return outcome{status: http.StatusPartialContent, bytes: sb.Len()}
	}
	var sent countingWriter
	mw = multipart.NewWriter(io.MultiWriter(h.bodyWriter(w, r), &sent))
	if err := mw.SetBoundary(boundary); err != nil {
		panic(fmt.Sprintf("static: multipart boundary %q: %v", boundary, err)) // multipart made it
	}
	for _, br := range ranges {
		pw, err := mw.CreatePart(partHeader(br))
		if err == nil {
			var b body
			if b, err = h.openBody(s, rp, br.start, br.length); err == nil {
				_, err = h.writeBody(pw, s, b)
			}
		}
		if err != nil {
			h.logBodyError(s, f, err)
			return outcome{status: http.StatusPartialContent, bytes: int64(sent)}
		}
	}
	mw.Close()
	return outcome{status: http.StatusPartialContent, bytes: int64(sent)}
}

type countingWriter int64

func (c *countingWriter) Write(p []byte) (int, error) {
	*c += countingWriter(len(p))
	return len(p), nil
}

// body is a span of a representation about to be written: n bytes from off. For a
// representation on disk, first is the blob file holding off, opened before the status line
// is sent so that a missing blob is still a clean 500.
type body struct {
	rep    *rep
	start  int64 // offset in the representation
	off, n int64 // off is in the blob of first
	first  *os.File
	part   int // index in rep.parts of first
}

// blobError marks an error reading a blob, as opposed to writing to the client.
type blobError struct{ err error }

func (e *blobError) Error() string { return e.err.Error() }
func (e *blobError) Unwrap() error { return e.err }

// openBody prepares writing n bytes of rp from off.
func (h *Handler) openBody(s *Site, rp *rep, off, n int64) (body, error) {
	b := body{rep: rp, start: off, off: off, n: n}
	if rp.data != nil || n == 0 {
		return b, nil
	}
	for i, pt := range rp.parts {
		if b.off >= pt.size {
			b.off -= pt.size
			continue
		}
		f, err := s.src.Open(pt.hash)
		if err != nil {
			return body{}, &blobError{fmt.Errorf("static: open blob %s: %w", pt.hash.Short(), err)}
		}
		b.first, b.part = f, i
		return b, nil
	}
	return b, nil
}

// sendBody sends a body to w. When w is package h2's, the body is handed over (h2.BodySender)
// and the handler returns at once: the connection reads it when the client has window for it,
// so a client that opens streams and never reads holds no file and no goroutine. The bytes
// reported are then those scheduled, which the Observer counts as sent. Any other w gets the
// body written here, with a write deadline per step over net/http's HTTP/2 (bodyWriter).
func (h *Handler) sendBody(w http.ResponseWriter, r *http.Request, s *Site, b body) (int64, error) {
	if bs, ok := w.(h2.BodySender); ok {
		if b.first != nil {
			// Opened to answer a missing blob with a clean 500; it is opened again when
			// there is window, so that nothing stays open while a client does not read.
			b.first.Close()
		}
		var hb h2.Body
		switch {
		case b.rep.data != nil:
			hb = memBody(b.rep.data[b.start : b.start+b.n])
		default:
			hb = &blobBody{src: s.src, parts: b.rep.parts, start: b.start, n: b.n}
		}
		if err := bs.SendBody(hb); err != nil {
			return 0, err
		}
		return b.n, nil
	}
	return h.writeBody(h.bodyWriter(w, r), s, b)
}

// bodyWriter is w, with a write deadline of SendTimeout set before each write when net/http
// serves HTTP/2 (httpserve.Config.StdHTTP2), as package h2 does itself: a stream whose client takes
// nothing for that long is reset. What this fallback cannot bound: the handler's goroutine
// and open blob stay with a stream waiting for flow-control window until that deadline, and
// net/http's server decides itself how much it buffers per connection.
func (h *Handler) bodyWriter(w http.ResponseWriter, r *http.Request) io.Writer {
	if r.ProtoMajor != 2 || h.cfg.SendTimeout <= 0 {
		return w
	}
	return &deadlineWriter{w: w, rc: http.NewResponseController(w), d: h.cfg.SendTimeout}
}

// deadlineWriter moves the response's write deadline forward before each write, so a slow
// download that progresses lives and a stalled one ends.
type deadlineWriter struct {
	w  io.Writer
	rc *http.ResponseController
	d  time.Duration
}

func (dw *deadlineWriter) Write(p []byte) (int, error) {
	if err := dw.rc.SetWriteDeadline(time.Now().Add(dw.d)); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return 0, err
	}
	return dw.w.Write(p)
}

// memBody is a span of a representation held in memory, for h2.BodySender: it is sent from
// the Site's bytes, not copied.
type memBody []byte

func (m memBody) Len() int64    { return int64(len(m)) }
func (m memBody) Bytes() []byte { return m }
func (m memBody) Open(off int64) (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(m[off:])), nil
}

// blobBody is a span of a representation on disk, for h2.BodySender: n bytes from start,
// across the blobs that hold them.
type blobBody struct {
	src      BlobSource
	parts    []part
	start, n int64
}

func (b *blobBody) Len() int64 { return b.n }

func (b *blobBody) Open(off int64) (io.ReadCloser, error) {
	if off < 0 || off > b.n {
		return nil, fmt.Errorf("static: body offset %d of %d", off, b.n)
	}
	return &partsReader{src: b.src, parts: b.parts, pos: b.start + off, left: b.n - off}, nil
}

// segmentedBody is a body made of spans of memory and of representations, for h2.BodySender: a
// multipart/byteranges body, whose part headers are written to it (Write) between the
// ranges (addSpan).
type segmentedBody struct {
	segs []h2.Body
	cur  []byte // written and not yet a segment
	n    int64
}

func (sb *segmentedBody) Write(p []byte) (int, error) {
	sb.cur = append(sb.cur, p...)
	return len(p), nil
}

// flush makes what was written a segment.
func (sb *segmentedBody) flush() {
	if len(sb.cur) > 0 {
		sb.segs = append(sb.segs, memBody(sb.cur))
		sb.n += int64(len(sb.cur))
		sb.cur = nil
	}
}

// addSpan adds n bytes of rp from off.
func (sb *segmentedBody) addSpan(s *Site, rp *rep, off, n int64) {
	sb.flush()
	if rp.data != nil {
		sb.segs = append(sb.segs, memBody(rp.data[off:off+n]))
	} else {
		sb.segs = append(sb.segs, &blobBody{src: s.src, parts: rp.parts, start: off, n: n})
	}
	sb.n += n
}

func (sb *segmentedBody) Len() int64 { return sb.n }

func (sb *segmentedBody) Open(off int64) (io.ReadCloser, error) {
	if off < 0 || off > sb.n {
		return nil, fmt.Errorf("static: body offset %d of %d", off, sb.n)
	}
	return &segmentsReader{segs: sb.segs, off: off}, nil
}

// segmentsReader reads segments in turn from off, opening each when it is reached.
type segmentsReader struct {
	segs []h2.Body
	off  int64 // in the first of segs
	rd   io.ReadCloser
}

func (sr *segmentsReader) Read(p []byte) (int, error) {
	for {
		if sr.rd == nil {
			for len(sr.segs) > 0 && sr.off >= sr.segs[0].Len() {
				sr.off -= sr.segs[0].Len()
				sr.segs = sr.segs[1:]
			}
			if len(sr.segs) == 0 {
				return 0, io.EOF
			}
			rd, err := sr.segs[0].Open(sr.off)
			if err != nil {
				return 0, err
			}
			sr.rd, sr.off = rd, 0
			sr.segs = sr.segs[1:]
		}
		n, err := sr.rd.Read(p)
		if err == io.EOF {
			sr.rd.Close()
			sr.rd = nil
			if n == 0 {
				continue
			}
			err = nil
		}
		return n, err
	}
}

func (sr *segmentsReader) Close() error {
	if sr.rd != nil {
		sr.rd.Close()
		sr.rd = nil
	}
	return nil
}

// partsReader reads a representation's blobs from pos on with pread, opening each blob when
// it is first read and closing it when the reader moves past it or is closed.
type partsReader struct {
	src       BlobSource
	parts     []part
	pos, left int64
	f         *os.File
	fStart    int64 // offset of f's blob in the representation
	fEnd      int64
}

func (pr *partsReader) Read(p []byte) (int, error) {
	if pr.left == 0 {
		return 0, io.EOF
	}
	if pr.f != nil && pr.pos >= pr.fEnd {
		pr.f.Close()
		pr.f = nil
	}
	if pr.f == nil {
		var start int64
		for _, pt := range pr.parts {
			if pr.pos < start+pt.size {
				f, err := pr.src.Open(pt.hash)
				if err != nil {
					return 0, &blobError{fmt.Errorf("static: open blob %s: %w", pt.hash.Short(), err)}
				}
				pr.f, pr.fStart, pr.fEnd = f, start, start+pt.size
				break
			}
			start += pt.size
		}
		if pr.f == nil {
			return 0, &blobError{fmt.Errorf("static: offset %d past the representation: %w", pr.pos, io.ErrUnexpectedEOF)}
		}
	}
	p = p[:min(int64(len(p)), pr.left, pr.fEnd-pr.pos)]
	n, err := pr.f.ReadAt(p, pr.pos-pr.fStart)
	pr.pos += int64(n)
	pr.left -= int64(n)
	if n == len(p) {
		return n, nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF // the blob is shorter than the manifest says
	}
	return n, &blobError{fmt.Errorf("static: read blob %s: %w", pr.f.Name(), err)}
}

func (pr *partsReader) Close() error {
	if pr.f != nil {
		pr.f.Close()
		pr.f = nil
	}
	return nil
}

// writeBody writes a body and closes its files. Bytes from disk go through io.CopyBuffer so
// that a plain HTTP/1.1 connection sends them with sendfile(2) (http's response implements
// io.ReaderFrom); the buffer serves TLS and HTTP/2.
func (h *Handler) writeBody(w io.Writer, s *Site, b body) (int64, error) {
	if b.rep.data != nil {
		n, err := w.Write(b.rep.data[b.off : b.off+b.n])
		return int64(n), err
	}
	if b.first == nil {
		return 0, nil
	}
	bufp := h.bufs.Get().(*[]byte)
	defer h.bufs.Put(bufp)
	var written int64
	f, off, left := b.first, b.off, b.n
	for i := b.part; left > 0; i++ {
		pt := b.rep.parts[i]
		if f == nil {
			var err error
			if f, err = s.src.Open(pt.hash); err != nil {
				return written, &blobError{fmt.Errorf("static: open blob %s: %w", pt.hash.Short(), err)}
			}
		}
		k := min(pt.size-off, left)
		m, err := copyBlob(w, f, off, k, *bufp)
		f.Close()
		f = nil
		written += m
		if err != nil {
			return written, err
		}
		left -= k
		off = 0
	}
	return written, nil
}

// copyBlob copies n bytes of a blob file from off.
func copyBlob(w io.Writer, f *os.File, off, n int64, buf []byte) (int64, error) {
	if off > 0 {
		if _, err := f.Seek(off, io.SeekStart); err != nil {
			return 0, &blobError{fmt.Errorf("static: seek blob: %w", err)}
		}
	}
	m, err := io.CopyBuffer(w, io.LimitReader(f, n), buf)
	if err == nil && m < n {
		// The blob is shorter than the manifest says (NewSite checked; it changed since).
		err = &blobError{fmt.Errorf("static: blob %s ends %d bytes early: %w", f.Name(), n-m, io.ErrUnexpectedEOF)}
	}
	return m, err
}

func (h *Handler) logBlobError(s *Site, f *file, err error) {
	h.log.LogAttrs(context.Background(), slog.LevelError, "Cannot read file of deploy",
		slog.Any("deploy", s.id), slog.String("path", pathOf(f)), slog.Any("error", err))
}

// logBodyError logs a body that could not be finished: at Error if a blob failed, at Debug if
// the client went away (the common case, not the edge's fault).
func (h *Handler) logBodyError(s *Site, f *file, err error) {
	var be *blobError
	if errors.As(err, &be) {
		h.logBlobError(s, f, err)
		return
	}
	if h.log.Enabled(context.Background(), slog.LevelDebug) {
		h.log.LogAttrs(context.Background(), slog.LevelDebug, "Response body not finished",
			slog.Any("deploy", s.id), slog.String("path", pathOf(f)), slog.Any("error", err))
	}
}

func pathOf(f *file) string {
	if f == nil {
		return ""
	}
	return f.path
}
