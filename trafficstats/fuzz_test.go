package trafficstats

import (
	"encoding/json"
	"net/netip"
	"reflect"
	"testing"
	"time"
)

// jsonWithVersion encodes m with version v instead of Version.
func jsonWithVersion(m Message, v int) ([]byte, error) {
	m.Type, m.V = Type, v
	return json.Marshal(m)
}

// FuzzDecode feeds Decode arbitrary bytes: it never panics, and a message it accepts encodes
// back to one it accepts with the same content, whose sketches decode.
func FuzzDecode(f *testing.F) {
	clk := &clock{time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)}
	c := New(Config{Now: clk.now})
	c.Observe(Response{Site: "blog", Path: "/a", Referer: "https://r.example/", Remote: "192.0.2.1:1", Status: 200, Bytes: 3})
	c.Observe(Response{Site: "blog", Path: "/b", Remote: "[2001:db8::1]:1", Status: 304})
	clk.t = clk.t.Add(time.Minute)
	seed, _ := Encode(c.Take())
	f.Add(seed)
	f.Add([]byte(`{"type":"stats","v":1,"sites":[]}`))
	f.Add([]byte(`{"type":"stats","v":1,"sites":[{"site":"a","start":1,"end":2,"day":"2026-01-01","visitors":"AgwAAQAAAAA="}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Decode(b)
		if err != nil {
			return
		}
		for i := range m.Sites {
			if _, err := m.Sites[i].Sketch(); err != nil {
				t.Fatalf("accepted a sketch that does not decode: %v", err)
			}
		}
		again, err := Encode(m)
		if err != nil {
			t.Fatal(err)
		}
		m2, err := Decode(again)
		if err != nil {
			t.Fatalf("re-encoded message refused: %v", err)
		}
		if !reflect.DeepEqual(normalize(m), normalize(m2)) {
			t.Fatalf("round trip changed the message:\n%+v\n%+v", m, m2)
		}
	})
}

// normalize makes empty and nil slices alike, as JSON does not tell them apart.
func normalize(m Message) Message {
	for i := range m.Sites {
		s := &m.Sites[i]
		for _, p := range []*[]Count{&s.Paths, &s.Referrers, &s.Countries} {
			if len(*p) == 0 {
				*p = nil
			}
		}
		if len(s.Visitors) == 0 {
			s.Visitors = nil
		}
	}
	if len(m.Sites) == 0 {
		m.Sites = nil
	}
	return m
}

// FuzzRemoteIP: the fast parse of "a.b.c.d:port" agrees with netip.ParseAddrPort on every
// input it accepts, and remoteIP with netip on every input.
func FuzzRemoteIP(f *testing.F) {
	for _, s := range []string{"192.0.2.1:443", "0.0.0.0:0", "255.255.255.255:65535", "1.2.3.4:65536", "01.2.3.4:1",
		"1.2.3.4:", "1.2.3.4", "[::1]:80", "[::ffff:1.2.3.4]:1", "1.2.3.4:0080", "1.2.3.256:1", "[fe80::1%eth0]:1", "1.2.3.4:+1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want := netip.Addr{}
		if ap, err := netip.ParseAddrPort(s); err == nil {
			want = ap.Addr().Unmap().WithZone("")
		}
		if got, ok := parseIPv4Port(s); ok && got != want {
			t.Fatalf("parseIPv4Port(%q) = %v, netip says %v", s, got, want)
		}
		if got := remoteIP(s); got != want {
			t.Fatalf("remoteIP(%q) = %v, want %v", s, got, want)
		}
	})
}
