package static

import (
	"net/http"
	"testing"
)

// TestPreconditionsShortcut checks that checkPreconditions' shortcut for a request with no
// conditional field gives what evaluating every field gives, for small and large headers with
// and without each field.
func TestPreconditionsShortcut(t *testing.T) {
	const etag = `"0123456789abcdef"`
	v := validators{etag: etag, modTime: 1_700_000_000, hasMod: true}
	past, future := "Mon, 02 Jan 2006 15:04:05 GMT", "Fri, 01 Jan 2100 00:00:00 GMT"
	conditionals := []http.Header{
		{}, {hIfMatch: {etag}}, {hIfMatch: {`"other"`}}, {hIfNoneMatch: {etag}}, {hIfNoneMatch: {"*"}},
		{hIfModifiedSince: {future}}, {hIfModifiedSince: {past}}, {hIfUnmodifiedSince: {past}},
		{hIfUnmodifiedSince: {future}}, {"if-none-match": {etag}}, {"If-Other": {"x"}},
	}
	others := []http.Header{
		{}, {hAcceptEncoding: {"gzip"}},
		{hAcceptEncoding: {"gzip"}, "User-Agent": {"t"}, "Accept": {"*/*"}},
		{hAcceptEncoding: {"gzip"}, "User-Agent": {"t"}, "Accept": {"*/*"}, "Cookie": {"a=b"}, "Referer": {"r"}},
	}
	for _, c := range conditionals {
		for _, o := range others {
			h := http.Header{}
			for k, vv := range o {
				h[k] = vv
			}
			for k, vv := range c {
				h[k] = vv
			}
			if got, want := checkPreconditions(h, v), evalPreconditions(h, v); got != want {
				t.Errorf("%v: %d, every field evaluated %d", h, got, want)
			}
		}
	}
}
