package h1

import (
	"bytes"
	"errors"
	"net/http"
	"strings"
	"testing"
)

// FuzzHeaderBlock adds a field of any name and two values to a header block: either Add
// refuses it (a name that is not a token, or one of the server's fields) and the block stays
// as it was, or the block holds exactly what appendFields writes for the same field in a
// header map: one line per value, the name canonical and the value free of line breaks.
func FuzzHeaderBlock(f *testing.F) {
	for _, seed := range [][3]string{
		{"Content-Type", "text/html; charset=utf-8", ""},
		{"etag", `"abc"`, `W/"def"`},
		{"X-Split", "a\r\nInjected: b", "c\nd"},
		{"X-Space", "  padded\t", "\u00a0café\u0085"},
		{"Content-Length", "5", "6"},
		{"Trailer:X", "v", ""},
		{"bad name", "v", ""},
		{"", "", ""},
	} {
		f.Add(seed[0], seed[1], seed[2])
	}
	f.Fuzz(func(t *testing.T, name, v1, v2 string) {
		var hb HeaderBlock
		hb.Add("X-Before", "kept")
		before := string(hb.b)
		err := hb.Add(name, v1, v2)
		if err != nil {
			if !errors.Is(err, ErrBlockField) || string(hb.b) != before || hb.Has(name) {
				t.Fatalf("Add(%q) refused with %v but changed the block to %q", name, err, hb.b)
			}
			return
		}
		key := http.CanonicalHeaderKey(name)
		want := appendFields([]byte(before), http.Header{key: {v1, v2}}, skipLength|skipTransferEncoding|skipConnection)
		if !bytes.Equal(hb.b, want) {
			t.Fatalf("Add(%q, %q, %q): block %q, header map's path %q", name, v1, v2, hb.b, want)
		}
		if !hb.Has(name) || !hb.Has(strings.ToLower(name)) {
			t.Fatalf("Has(%q) is false after Add", name)
		}
		// Three lines, each ended by the only CR and LF in it, the field's two named key.
		lines := strings.SplitAfter(string(hb.b), "\r\n")
		if len(lines) != 4 || lines[3] != "" {
			t.Fatalf("block %q is not three lines", hb.b)
		}
		for i, l := range lines[:3] {
			if strings.ContainsAny(l[:len(l)-2], "\r\n") || i > 0 && !strings.HasPrefix(l, key+": ") {
				t.Fatalf("block %q: line %q", hb.b, l)
			}
		}
	})
}
