package accesslog

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// FuzzLine formats entries of arbitrary strings: a JSON line always parses to the (capped)
// values, with invalid UTF-8 replaced, and a combined line is always one line of printable
// ASCII whose quoted fields no value can close.
func FuzzLine(f *testing.F) {
	f.Add("GET", "/a?b=c", "ref", "ua", "host", "192.0.2.1:1")
	f.Add("GE\"T", "/\x00\n\\", "\xff\xfe", "é\u2028", "", "[::1]:2")
	f.Fuzz(func(t *testing.T, method, uri, referer, ua, host, remote string) {
		e := entry(1)
		e.Method, e.URI, e.Referer, e.UserAgent, e.Host, e.RemoteAddr = method, uri, referer, ua, host, remote
		var r record
		r.set(e)
		line := appendJSON(nil, &r, false, nil)
		var got map[string]any
		if err := json.Unmarshal(line, &got); err != nil {
			t.Fatalf("JSON line %q: %v", line, err)
		}
		if bytes.Count(line, []byte("\n")) != 1 {
			t.Fatalf("JSON line %q is not one line", line)
		}
		for name, v := range map[string]string{"method": method, "path": uri, "referer": referer, "user_agent": ua, "host": host} {
			want := capped(v, name)
			if got[name] != want {
				t.Errorf("%s = %q, want %q", name, got[name], want)
			}
		}
		c := appendCombined(nil, &r, true, nil)
		if i := bytes.IndexFunc(c[:len(c)-1], func(r rune) bool { return r < 0x20 || r >= 0x7f }); i >= 0 || c[len(c)-1] != '\n' {
			t.Fatalf("combined line %q is not one line of printable ASCII", c)
		}
		if n := bytes.Count(c, []byte(`"`)); n != 6 {
			t.Fatalf("combined line %q has %d quotes, want 6", c, n)
		}
	})
}

// capped is v as a JSON line shows it: truncated to its field's cap, invalid UTF-8 replaced.
func capped(v, name string) string {
	caps := map[string]int{"method": fieldCap[fMethod], "path": MaxURIBytes, "referer": MaxHeaderBytes, "user_agent": MaxHeaderBytes, "host": MaxHostBytes}
	if len(v) > caps[name] {
		v = v[:caps[name]]
	}
	var b strings.Builder
	for _, r := range v { // ranging a string yields U+FFFD for each invalid byte
		b.WriteRune(r)
	}
	return b.String()
}
