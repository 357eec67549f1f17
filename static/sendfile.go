package static

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/dt-cdn/dt/blobs"
	"github.com/dt-cdn/dt/internal/fdcache"
	"github.com/dt-cdn/dt/internal/sendconn"
)

// DefaultSendfileMin is HandlerConfig.SendfileMin's default: the smallest body held in memory
// that plain HTTP/1.1 sends by sendfile(2) from its open blob file rather than by writev(2)
// from memory. Sending page references saves the copy of the body into the socket, which grows
// with its size; it costs a second system call and the open file's lookup, which do not.
// Measured on loopback on a shared 2-core machine (CPU time per response): sendfile against
// writev alone, server on one core, saves nothing at 4–16 KiB, 0.4–0.9 µs of 12–14 at 26 KB,
// 3 µs at 64 KiB and 6 µs at 100 KiB. Once the rest of a response cost less (package h1's
// allocations and clock readings cut), the edgebench cell of a 26 KB gzip body, against nginx
// (which sends it by sendfile) in the same run, went from 0.87× to 0.98–1.01× pinned and from
// 0.73–0.77× to 0.80–0.81× unpinned (two alternating runs each) by sendfile: from 24 KiB,
// sendfile.
const DefaultSendfileMin = 24 << 10

// sendsFile reports whether n bytes of rp go by sendfile to a FileSender: always for a
// representation on disk, and from SendfileMin up for one held in memory.
func (h *Handler) sendsFile(rp *rep, n int64) bool {
	return n > 0 && h.files != nil && (rp.data == nil || (h.sendfileMin > 0 && n >= h.sendfileMin))
}

// blobSpan is where a span of a representation starts on disk: the open blob file holding
// its first byte, that blob's index in rep.parts and the offset in it. The file is acquired
// before the status line is sent, so that a missing blob is still a clean 500.
type blobSpan struct {
	start int64 // in the representation
	file  *fdcache.File[blobs.Hash]
	part  int
	off   int64 // in the blob
}

// acquireSpan acquires the blob holding byte off of rp and checks its size against the
// manifest's (a blob shorter than that is answered 500 rather than cut short).
func (h *Handler) acquireSpan(s *Site, rp *rep, off int64) (blobSpan, error) {
	start := off
	for i, pt := range rp.parts {
		if off >= pt.size {
			off -= pt.size
			continue
		}
		bf, err := h.files.Acquire(pt.hash, s.src)
		if err != nil {
			return blobSpan{}, &blobError{fmt.Errorf("static: open blob %s: %w", pt.hash.Short(), err)}
		}
		if bf.Size() < pt.size {
			bf.Release()
			return blobSpan{}, &blobError{fmt.Errorf("%w: %s holds %d bytes, manifest says %d", ErrMissingBlob, pt.hash.Short(), bf.Size(), pt.size)}
		}
		return blobSpan{start: start, file: bf, part: i, off: off}, nil
	}
	return blobSpan{}, &blobError{fmt.Errorf("static: offset %d past the representation", off)}
}

// serveSendfile answers with the whole of rp (status 200, or an error page's) by sendfile,
// its header going out as hd says. It reports false, having written nothing, when the blob
// cannot be opened but rp is held in memory: the caller sends it from there.
func (h *Handler) serveSendfile(w http.ResponseWriter, r *http.Request, fs sendconn.FileSender, s *Site, f *file, rp *rep, hd head, status int) (outcome, bool) {
	sp, ok, o := h.acquireOrFail(w, r, s, f, rp, 0)
	if !ok {
		return o, o.status != 0
	}
	hd.write(w, status)
	n, err := h.sendSpan(w, fs, s, rp, sp, rp.size)
	if err != nil {
		h.logBodyError(s, f, err)
	}
	return outcome{status: status, coding: rp.coding, bytes: n}, true
}

// serveRangeSendfile answers with one range of rp (206) by sendfile, the headers but the
// range's being set; it reports false as serveSendfile does.
func (h *Handler) serveRangeSendfile(w http.ResponseWriter, r *http.Request, fs sendconn.FileSender, s *Site, f *file, rp *rep, br byteRange) (outcome, bool) {
	sp, ok, o := h.acquireOrFail(w, r, s, f, rp, br.start)
	if !ok {
		return o, o.status != 0
	}
	hdr := w.Header()
	hdr[hContentRange] = []string{formatContentRange(br, rp.size)}
	hdr[hContentLength] = []string{strconv.FormatInt(br.length, 10)}
	w.WriteHeader(http.StatusPartialContent)
	n, err := h.sendSpan(w, fs, s, rp, sp, br.length)
	if err != nil {
		h.logBodyError(s, f, err)
	}
	return outcome{status: http.StatusPartialContent, bytes: n}, true
}

// acquireOrFail acquires the blob holding byte off of rp. When it cannot, it answers 500
// (and returns that outcome), unless rp is held in memory: then it returns a zero outcome,
// and the response is sent from memory. NewSite checked every blob, but one may have gone
// since (removed by hand, or by a collection that a deploy held in memory survived).
func (h *Handler) acquireOrFail(w http.ResponseWriter, r *http.Request, s *Site, f *file, rp *rep, off int64) (blobSpan, bool, outcome) {
	sp, err := h.acquireSpan(s, rp, off)
	if err == nil {
		return sp, true, outcome{}
	}
	h.logBlobError(s, f, err)
	if rp.data != nil {
		return blobSpan{}, false, outcome{}
	}
	clearFileHeaders(w.Header())
	return blobSpan{}, false, h.writeError(w, r, http.StatusInternalServerError, nil)
}

// sendSpan sends n bytes of rp from sp by fs, releasing each blob file once sent. When fs
// cannot take them (sendconn.ErrNotSendable), they are written by w from memory or from the
// files.
func (h *Handler) sendSpan(w http.ResponseWriter, fs sendconn.FileSender, s *Site, rp *rep, sp blobSpan, n int64) (int64, error) {
	var sent int64
	bf, off := sp.file, sp.off
	for i := sp.part; sent < n; i++ {
		pt := rp.parts[i]
		if bf == nil {
			var err error
			if bf, err = h.files.Acquire(pt.hash, s.src); err != nil {
				return sent, &blobError{fmt.Errorf("static: open blob %s: %w", pt.hash.Short(), err)}
			}
		}
		k := min(pt.size-off, n-sent)
		m, err := fs.SendFileAt(bf.Fd(), off, k)
		if errors.Is(err, sendconn.ErrNotSendable) {
			m, err = h.copySpan(w, bf, rp, sp.start+sent, off, k)
		}
		bf.Release()
		bf, off = nil, 0
		sent += m
		if errors.Is(err, sendconn.ErrShortFile) {
			err = &blobError{fmt.Errorf("static: blob %s: %w", pt.hash.Short(), err)}
		}
		if err != nil {
			return sent, err
		}
	}
	return sent, nil
}

// copySpan writes k bytes of a blob from off by w: from memory when rp is held there (at
// representation offset at), else read from the file.
func (h *Handler) copySpan(w http.ResponseWriter, bf *fdcache.File[blobs.Hash], rp *rep, at, off, k int64) (int64, error) {
	if rp.data != nil {
		m, err := w.Write(rp.data[at : at+k])
		return int64(m), err
	}
	bufp := h.bufs.Get().(*[]byte)
	defer h.bufs.Put(bufp)
	var sent int64
	for sent < k {
		p := (*bufp)[:min(int64(len(*bufp)), k-sent)]
		m, err := bf.ReadAt(p, off+sent)
		if m < len(p) {
			if err == nil {
				err = fmt.Errorf("static: short read: %w", sendconn.ErrShortFile)
			}
			return sent, &blobError{fmt.Errorf("static: read blob %s: %w", bf.Name(), err)}
		}
		m, err = w.Write(p)
		sent += int64(m)
		if err != nil {
			return sent, err
		}
	}
	return sent, nil
}
