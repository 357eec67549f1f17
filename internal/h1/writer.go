package h1

import (
	"errors"
	"io"
	"net/http"
	"sync"

	"github.com/dt-cdn/dt/internal/sendconn"
)

// ErrHandlerReturned is returned by the writes of a handler's http.ResponseWriter once the
// handler has returned: its response is finished, and its writer writes nothing more.
var ErrHandlerReturned = errors.New("h1: response written after its handler returned")

// maxReusedFields is the most header map entries a response leaves behind for the next to
// reuse: a map a handler grew larger is dropped rather than kept in the pool.
const maxReusedFields = 32

// responses are the response states of the connections with a request in hand: a connection
// takes one for its first response and gives it back once it waits for the next request
// (releaseBuffers), so an idle connection holds none.
var responses = sync.Pool{New: func() any { return &response{header: make(http.Header, 8)} }}

// responseWriter is the http.ResponseWriter a handler gets: a handle on a response state, which
// is reused from one request to the next, valid for one request only. Each request's handle
// carries the state's generation as of that request; once the handler returns the state moves
// on (retire), so that a handler or a goroutine of its keeping w after it returned cannot write
// into a later response: its writes return ErrHandlerReturned, and Header gives a map of its
// own that nothing reads. The handle is 16 bytes, allocated with the request (parsedRequest)
// when it is parsed in place: the state (about 200 bytes) and its header map are not
// allocated per request.
type responseWriter struct {
	r   *response
	gen uint64
}

var _ interface {
	http.ResponseWriter
	http.Flusher
	io.ReaderFrom
	HeaderBlockWriter
	sendconn.FileSender
} = (*responseWriter)(nil)

// newResponse returns the writer of req's response, on the connection's response state.
func (c *conn) newResponse(req *http.Request) *responseWriter {
	if c.rs == nil {
		c.rs = responses.Get().(*response)
	}
	w := c.rs
	w.reset(c, req)
	hw := c.nextWriter
	if hw == nil {
		hw = new(responseWriter)
	}
	c.nextWriter = nil
	*hw = responseWriter{r: w, gen: w.gen.Load()}
	if rb, ok := req.Body.(*requestBody); ok {
		rb.w = hw
	}
	return hw
}

// reset makes w the response to req, in a new generation.
func (w *response) reset(c *conn, req *http.Request) {
	w.gen.Add(1)
	h := w.header
	if len(h) > maxReusedFields {
		h = make(http.Header, 8)
	}
	clear(h)
	w.c, w.req, w.header, w.snapshot, w.block = c, req, h, nil, nil
	w.responseFlags = responseFlags{clen: -1, isHEAD: req.Method == http.MethodHead}
	if req.ProtoAtLeast(1, 1) {
		w.wantsClose = hasToken(req.Header["Connection"], "close")
	} else {
		w.wantsKeepAlive10 = hasToken(req.Header["Connection"], "keep-alive")
	}
}

// retire ends the handler's hold on w: the writer it was given is dead from here on.
func (w *response) retire() { w.gen.Add(1) }

// release drops what w refers to of its request before it goes back to the pool.
func (w *response) release() {
	w.c, w.req, w.snapshot, w.block = nil, nil, nil, nil
	if len(w.header) > maxReusedFields {
		w.header = make(http.Header, 8)
	}
	clear(w.header)
	responses.Put(w)
}

// live returns the response state while the handler that was given w runs, nil after.
func (w *responseWriter) live() *response {
	if w.r.gen.Load() != w.gen {
		return nil
	}
	return w.r
}

func (w *responseWriter) Header() http.Header {
	if r := w.live(); r != nil {
		return r.header
	}
	return http.Header{}
}

func (w *responseWriter) WriteHeader(code int) {
	if r := w.live(); r != nil {
		r.WriteHeader(code)
	}
}

func (w *responseWriter) WriteHeaderBlock(code int, hb *HeaderBlock, contentLength int64) {
	if r := w.live(); r != nil {
		r.WriteHeaderBlock(code, hb, contentLength)
	}
}

func (w *responseWriter) Write(p []byte) (int, error) {
	if r := w.live(); r != nil {
		return r.Write(p)
	}
	return 0, ErrHandlerReturned
}

func (w *responseWriter) Flush() {
	if r := w.live(); r != nil {
		r.Flush()
	}
}

func (w *responseWriter) ReadFrom(src io.Reader) (int64, error) {
	if r := w.live(); r != nil {
		return r.ReadFrom(src)
	}
	return 0, ErrHandlerReturned
}

// SendFileAt implements sendconn.FileSender (see response.SendFileAt).
func (w *responseWriter) SendFileAt(fd int, off, n int64) (int64, error) {
	if r := w.live(); r != nil {
		return r.SendFileAt(fd, off, n)
	}
	return 0, ErrHandlerReturned
}
