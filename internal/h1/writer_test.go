package h1_test

import (
	"errors"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/dt-cdn/dt/internal/h1"
	"github.com/dt-cdn/dt/internal/sendconn"
)

// TestWriterAfterHandlerReturned checks that a handler's http.ResponseWriter, kept after the
// handler returned, writes nothing into a later response (the server reuses a response's state
// from one request to the next, on the connection and from another one): its writes return
// h1.ErrHandlerReturned, its header map is its own, and the later responses arrive whole and
// unchanged, on the same connection and on another.
func TestWriterAfterHandlerReturned(t *testing.T) {
	file, err := os.Open(writeTempFile(t, []byte("stale file")))
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	kept := make(chan http.ResponseWriter, 1)
	staleErrs := make(chan []error, 1)
	addr := startH1(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/keep":
			kept <- w
			w.Write([]byte("first"))
		case "/next":
			// A goroutine of the first handler's writes with the writer it kept, while this
			// response is being made.
			done := make(chan []error)
			go func() { done <- useStale(<-kept, file) }()
			staleErrs <- <-done
			w.Header().Set("X-Live", "1")
			w.Write([]byte("second"))
		}
	}), nil)
	check := func(c *clientConn) {
		t.Helper()
		c.send(get("/next"))
		r := c.readOK("GET")
		if string(r.body) != "second" || r.resp.Header.Get("X-Live") != "1" || r.resp.Header.Get("X-Stale") != "" {
			t.Errorf("later response: header %v, body %q", r.resp.Header, r.body)
		}
		for _, err := range <-staleErrs {
			if !errors.Is(err, h1.ErrHandlerReturned) {
				t.Errorf("write by a writer kept after its handler returned: %v, want ErrHandlerReturned", err)
			}
		}
		c.send(get("/ping")) // nothing stray before it in the stream
		c.readOK("GET")
	}
	first := dial(t, addr)
	first.send(get("/keep"))
	if r := first.readOK("GET"); string(r.body) != "first" {
		t.Fatalf("first response: %q", r.body)
	}
	check(first)

	// The kept writer's state is back in the pool once its connection waits: another
	// connection may take it.
	first.send(get("/keep"))
	first.readOK("GET")
	check(dial(t, addr))
}

// useStale writes with every method of w, a writer whose handler has returned, and returns the
// errors of those that return one.
func useStale(w http.ResponseWriter, f *os.File) []error {
	w.Header().Set("X-Stale", "1")
	w.WriteHeader(http.StatusInternalServerError)
	var hb h1.HeaderBlock
	hb.Add("X-Stale", "block")
	w.(h1.HeaderBlockWriter).WriteHeaderBlock(http.StatusTeapot, &hb, 5)
	_, err1 := w.Write([]byte("stale"))
	w.(http.Flusher).Flush()
	_, err2 := w.(io.ReaderFrom).ReadFrom(strings.NewReader("stale"))
	_, err3 := w.(sendconn.FileSender).SendFileAt(int(f.Fd()), 0, 5)
	return []error{err1, err2, err3}
}
