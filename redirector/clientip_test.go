package redirector

import (
	"net/http"
	"net/netip"
	"strings"
	"testing"
)

func prefixes(ss ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParsePrefix(s)
	}
	return out
}

func TestClientIP(t *testing.T) {
	proxies := prefixes("10.0.0.0/8", "2001:db8:f::/48", "127.0.0.0/8")
	tests := []struct {
		name   string
		remote string
		xff    []string
		fwd    []string
		want   string // "" for the zero Addr
	}{
		{"direct IPv4", "203.0.113.5:5000", nil, nil, "203.0.113.5"},
		{"direct IPv6", "[2001:db8::5]:5000", nil, nil, "2001:db8::5"},
		{"direct IPv4-mapped", "[::ffff:203.0.113.5]:5000", nil, nil, "203.0.113.5"},
		{"direct with zone", "[fe80::1%eth0]:5000", nil, nil, "fe80::1"},
		{"RemoteAddr without port", "203.0.113.5", nil, nil, "203.0.113.5"},
		{"RemoteAddr garbage", "pipe", []string{"198.51.100.1"}, nil, ""},
		{"untrusted peer: headers ignored", "203.0.113.5:1", []string{"198.51.100.1"}, []string{"for=198.51.100.2"}, "203.0.113.5"},
		{"trusted peer, no header", "10.1.1.1:1", nil, nil, "10.1.1.1"},
		{"trusted peer, one hop", "10.1.1.1:1", []string{"198.51.100.1"}, nil, "198.51.100.1"},
		{"right-most untrusted hop", "10.1.1.1:1", []string{"1.1.1.1, 198.51.100.1, 10.2.2.2"}, nil, "198.51.100.1"},
		{"spoofed left part ignored", "10.1.1.1:1", []string{"10.9.9.9, 198.51.100.1"}, nil, "198.51.100.1"},
		{"several header lines are one list", "10.1.1.1:1", []string{"198.51.100.7", "10.2.2.2, 10.3.3.3"}, nil, "198.51.100.7"},
		{"all trusted: left-most", "10.1.1.1:1", []string{"10.5.5.5, 10.2.2.2"}, nil, "10.5.5.5"},
		{"empty elements skipped", "10.1.1.1:1", []string{" , 198.51.100.1 ,, "}, nil, "198.51.100.1"},
		{"hop with port", "10.1.1.1:1", []string{"198.51.100.1:4711"}, nil, "198.51.100.1"},
		{"bracketed IPv6 hop with port", "10.1.1.1:1", []string{"[2001:db8::7]:4711"}, nil, "2001:db8::7"},
		{"bare IPv6 hop", "10.1.1.1:1", []string{"2001:db8::7"}, nil, "2001:db8::7"},
		{"IPv4-mapped hop", "10.1.1.1:1", []string{"::ffff:198.51.100.1"}, nil, "198.51.100.1"},
		{"garbage hop: the proxy", "10.1.1.1:1", []string{"198.51.100.1, garbage"}, nil, "10.1.1.1"},
		{"garbage behind a trusted hop", "10.1.1.1:1", []string{"garbage, 10.2.2.2"}, nil, "10.2.2.2"},
		{"garbage beyond the untrusted hop is not read", "10.1.1.1:1", []string{"garbage, 198.51.100.1"}, nil, "198.51.100.1"},
		{"XFF wins over Forwarded", "10.1.1.1:1", []string{"198.51.100.1"}, []string{"for=198.51.100.2"}, "198.51.100.1"},
		{"IPv6 proxy", "[2001:db8:f::1]:1", []string{"198.51.100.1"}, nil, "198.51.100.1"},

		{"Forwarded one hop", "10.1.1.1:1", nil, []string{"for=198.51.100.2"}, "198.51.100.2"},
		{"Forwarded case and spaces", "10.1.1.1:1", nil, []string{"For=198.51.100.2 ; Proto=https"}, "198.51.100.2"},
		{"Forwarded quoted IPv6 with port", "10.1.1.1:1", nil, []string{`for="[2001:db8:cafe::17]:4711"`}, "2001:db8:cafe::17"},
		{"Forwarded chain", "10.1.1.1:1", nil, []string{`for=192.0.2.43, for="[2001:db8:cafe::17]", for=10.2.2.2;by=10.1.1.1`}, "2001:db8:cafe::17"},
		{"Forwarded lines", "10.1.1.1:1", nil, []string{"for=192.0.2.43", "for=10.2.2.2"}, "192.0.2.43"},
		{"Forwarded comma inside quotes", "10.1.1.1:1", nil, []string{`for=192.0.2.43;host="a,b", for=10.2.2.2`}, "192.0.2.43"},
		{"Forwarded escaped quote", "10.1.1.1:1", nil, []string{`for="192.0.2.4\3"`}, "192.0.2.43"},
		{"Forwarded unknown: the proxy", "10.1.1.1:1", nil, []string{"for=198.51.100.1, for=unknown"}, "10.1.1.1"},
		{"Forwarded obfuscated: the proxy", "10.1.1.1:1", nil, []string{"for=198.51.100.1, for=_hidden"}, "10.1.1.1"},
		{"Forwarded element without for", "10.1.1.1:1", nil, []string{"for=198.51.100.1, proto=https"}, "10.1.1.1"},
		{"Forwarded duplicate for", "10.1.1.1:1", nil, []string{"for=198.51.100.1;for=198.51.100.9"}, "10.1.1.1"},
		{"Forwarded unterminated quote", "10.1.1.1:1", nil, []string{`for=198.51.100.1, for="10.2.2.2`}, "10.1.1.1"},
		{"Forwarded garbage after value", "10.1.1.1:1", nil, []string{`for=198.51.100.1 x, for=10.2.2.2`}, "10.2.2.2"},
		{"Forwarded empty elements", "10.1.1.1:1", nil, []string{"for=198.51.100.1,, ,"}, "198.51.100.1"},
		{"Forwarded all trusted", "10.1.1.1:1", nil, []string{"for=10.7.7.7, for=10.2.2.2"}, "10.7.7.7"},
		{"Forwarded bare IPv6", "10.1.1.1:1", nil, []string{`for="2001:db8::1"`}, "2001:db8::1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &http.Request{RemoteAddr: tt.remote, Header: http.Header{}}
			for _, v := range tt.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			for _, v := range tt.fwd {
				r.Header.Add("Forwarded", v)
			}
			got := ClientIP(r, proxies)
			var want netip.Addr
			if tt.want != "" {
				want = netip.MustParseAddr(tt.want)
			}
			if got != want {
				t.Errorf("got %v, want %v", got, want)
			}
		})
	}
}

// TestClientIPHopBound checks that a long chain of trusted hops costs a bounded walk.
func TestClientIPHopBound(t *testing.T) {
	hops := strings.Repeat("10.0.0.1, ", 10000) + "10.0.0.2"
	r := &http.Request{RemoteAddr: "10.1.1.1:1", Header: http.Header{"X-Forwarded-For": {"198.51.100.1, " + hops}}}
	if got := ClientIP(r, prefixes("10.0.0.0/8")); got != netip.MustParseAddr("10.0.0.1") {
		t.Errorf("XFF: got %v, want a trusted hop at the bound", got)
	}
	r.Header = http.Header{"Forwarded": {"for=198.51.100.1, " + strings.Repeat("for=10.0.0.1, ", 10000) + "for=10.0.0.2"}}
	if got := ClientIP(r, prefixes("10.0.0.0/8")); got != netip.MustParseAddr("10.0.0.1") {
		t.Errorf("Forwarded: got %v, want a trusted hop at the bound", got)
	}
}

// FuzzClientIP feeds random peers and headers. Whatever they hold, ClientIP must not panic, must
// ignore headers from untrusted peers, and must return an unmapped, zoneless address that is
// either the peer or one spelled in the headers.
func FuzzClientIP(f *testing.F) {
	f.Add("10.1.1.1:1", "198.51.100.1, 10.2.2.2", "")
	f.Add("10.1.1.1:1", "", `for=192.0.2.43, for="[2001:db8:cafe::17]:4711";proto=https`)
	f.Add("203.0.113.5:1", "198.51.100.1", "for=1.2.3.4")
	f.Add("[2001:db8:f::1]:443", "[2001:db8::7]:4711,,garbage", `for="unterminated`)
	f.Add("10.1.1.1:1", "::ffff:1.2.3.4", `for="\"\\";by=_x, for=unknown`)
	f.Add("garbage", "1.2.3.4", "for=1.2.3.4")
	f.Add("[fe80::1%eth0]:1", "fe80::2%lo", `for="[fe80::3%25eth0]"`)
	trusted := prefixes("10.0.0.0/8", "2001:db8:f::/48", "::ffff:0:0/96")
	f.Fuzz(func(t *testing.T, remote, xff, fwd string) {
		r := &http.Request{RemoteAddr: remote, Header: http.Header{}}
		if xff != "" {
			r.Header["X-Forwarded-For"] = strings.Split(xff, "\n")
		}
		if fwd != "" {
			r.Header["Forwarded"] = strings.Split(fwd, "\n")
		}
		got := ClientIP(r, trusted)
		peer := parseHop(remote)
		if !peer.IsValid() {
			if got.IsValid() {
				t.Fatalf("peer %q is not an address, got %v", remote, got)
			}
			return
		}
		if !got.IsValid() || got.Is4In6() || got.Zone() != "" {
			t.Fatalf("got %v", got)
		}
		if !isTrusted(peer, trusted) && got != peer {
			t.Fatalf("untrusted peer %v, got %v from its headers", peer, got)
		}
		if got != peer && !spelledIn(got, xff+"\n"+fwd) {
			t.Fatalf("got %v, neither the peer %v nor in the headers", got, peer)
		}
	})
}

// spelledIn reports whether some address-like run of s parses to ip.
func spelledIn(ip netip.Addr, s string) bool {
	fields := strings.FieldsFunc(s, func(r rune) bool { return strings.ContainsRune(",;= \t\n\"[]", r) })
	for _, f := range fields {
		if parseHop(f) == ip || parseHop(strings.ReplaceAll(f, `\`, "")) == ip {
			return true
		}
		// host:port forms split by FieldsFunc lose nothing; [v6]:port loses its brackets.
		if i := strings.LastIndexByte(f, ':'); i > 0 && parseHop(f[:i]) == ip {
			return true
		}
	}
	return false
}
