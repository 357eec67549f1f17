package h1

import (
	"fmt"
	"testing"
)

// TestResponseStateDropsLargeHeader checks that a response state whose handler grew its header
// map past maxReusedFields gets a new map for its next request rather than keeping the large
// one, and that a smaller map is kept, emptied.
func TestResponseStateDropsLargeHeader(t *testing.T) {
	c := &conn{srv: &Server{}}
	req, _, ok := parseHead(baseRequest(t.Context()), []byte("GET / HTTP/1.1\r\nHost: a\r\n\r\n"))
	if !ok {
		t.Fatal("request declined")
	}
	for _, n := range []int{maxReusedFields, maxReusedFields + 1} {
		w := c.newResponse(req)
		h := w.Header()
		for i := range n {
			h.Set(fmt.Sprintf("X-Field-%d", i), "v")
		}
		w.r.retire()
		next := c.newResponse(req).Header()
		if len(next) != 0 {
			t.Fatalf("%d fields: the next response's header holds %d", n, len(next))
		}
		if kept := fmt.Sprintf("%p", next) == fmt.Sprintf("%p", h); kept != (n <= maxReusedFields) {
			t.Errorf("%d fields: map kept %v, want %v", n, kept, n <= maxReusedFields)
		}
		if _, ok := next["X-Field-0"]; ok {
			t.Errorf("%d fields: a field of the response before is in the next", n)
		}
	}
}
