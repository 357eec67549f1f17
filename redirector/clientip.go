package redirector

import (
	"net/http"
	"net/netip"
	"strings"
)

// maxHops bounds how many forwarding hops ClientIP examines. Real proxy chains are a few hops
// long; the bound keeps a hostile header from costing more than a short walk.
const maxHops = 32

// ClientIP returns the address of the client that sent r: the connection's peer (RemoteAddr),
// or, when that peer is in one of the trusted networks, the right-most address of the
// forwarding chain that is not itself trusted. The walk runs from the right because each
// trusted proxy appends the address it received the request from; everything left of the first
// untrusted hop was written by parties nobody vouches for.
//
// The chain is X-Forwarded-For when the request has one, else RFC 7239 Forwarded (its for=
// parameters). Most proxies (nginx, HAProxy, Caddy, cloud load balancers) append to
// X-Forwarded-For; one that writes only Forwarded leaves a client free to send a forged
// X-Forwarded-For, which can only steer that client to another edge (see the package Caveats).
// Repeated header lines form one list, in order (RFC 9110 §5.3).
//
// A hop that is not an address (garbage, "unknown", an RFC 7239 §6.3 obfuscated identifier, an
// element without for=) ends the walk: the client is then the last trusted address seen, the
// proxy that could not say whom it served. All hops trusted gives the left-most one. The result
// is unmapped (IPv4-mapped IPv6 becomes IPv4) and carries no zone; it is the zero Addr only when
// RemoteAddr is not an address.
func ClientIP(r *http.Request, trusted []netip.Prefix) netip.Addr {
	remote := parseHop(r.RemoteAddr)
	if !remote.IsValid() || !isTrusted(remote, trusted) {
		return remote
	}
	if xff := r.Header.Values("X-Forwarded-For"); len(xff) > 0 {
		return walkXFF(xff, remote, trusted)
	}
	if fwd := r.Header.Values("Forwarded"); len(fwd) > 0 {
		return walkForwarded(fwd, remote, trusted)
	}
	return remote
}

// isTrusted reports whether ip is in one of the trusted networks.
func isTrusted(ip netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// walkXFF walks X-Forwarded-For lists ("client, proxy1, proxy2") from the right without
// splitting them (no allocation). Empty list elements are skipped (RFC 9110 §5.6.1).
func walkXFF(lines []string, last netip.Addr, trusted []netip.Prefix) netip.Addr {
	hops := 0
	for i := len(lines) - 1; i >= 0; i-- {
		s := lines[i]
		for s != "" {
			var elem string
			if j := strings.LastIndexByte(s, ','); j >= 0 {
				s, elem = s[:j], s[j+1:]
			} else {
				s, elem = "", s
			}
			elem = strings.Trim(elem, " \t")
			if elem == "" {
				continue
			}
			ip := parseHop(elem)
			if !ip.IsValid() {
				return last
			}
			if !isTrusted(ip, trusted) {
				return ip
			}
			if hops++; hops == maxHops {
				return ip
			}
			last = ip
		}
	}
	return last
}

// walkForwarded walks the for= values of Forwarded elements from the right.
func walkForwarded(lines []string, last netip.Addr, trusted []netip.Prefix) netip.Addr {
	// Quoted strings may hold commas, so the elements are parsed from the left; only the last
	// maxHops are kept, in a ring.
	var ring [maxHops]string
	n := 0
	for _, line := range lines {
		for p := (forwardedParser{s: line}); !p.done(); {
			if v, empty := p.nextFor(); !empty {
				ring[n%maxHops] = v
				n++
			}
		}
	}
	for k := range min(n, maxHops) {
		ip := parseHop(ring[(n-1-k)%maxHops])
		if !ip.IsValid() {
			return last
		}
		if !isTrusted(ip, trusted) {
			return ip
		}
		last = ip
	}
	return last
}

// parseHop parses a node as proxies write it: "192.0.2.1", "2001:db8::1", "192.0.2.1:4711",
// "[2001:db8::1]:4711" or "[2001:db8::1]". Anything else, including RFC 7239 "unknown" and
// obfuscated identifiers ("_hidden"), is not an address: the zero Addr.
func parseHop(s string) netip.Addr {
	if ip, err := netip.ParseAddr(s); err == nil {
		return ip.Unmap().WithZone("")
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap().WithZone("")
	}
	if len(s) > 2 && s[0] == '[' && s[len(s)-1] == ']' {
		if ip, err := netip.ParseAddr(s[1 : len(s)-1]); err == nil && ip.Is6() {
			return ip.Unmap().WithZone("")
		}
	}
	return netip.Addr{}
}

// forwardedParser reads a Forwarded field value (RFC 7239 §4):
//
//	Forwarded         = 1#forwarded-element
//	forwarded-element = [ forwarded-pair ] *( ";" [ forwarded-pair ] )
//	forwarded-pair    = token "=" value
//	value             = token / quoted-string
//
// leniently as to whitespace. It never fails: a malformed element yields "" (not an address), and
// an unterminated quoted string swallows the rest of the line.
type forwardedParser struct {
	s string
	i int
}

func (p *forwardedParser) done() bool {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t') {
		p.i++
	}
	return p.i >= len(p.s)
}

// nextFor consumes one element and returns its for= value; "" when it has none, has it twice
// (RFC 7239 §4: a parameter MUST NOT occur more than once per element) or is malformed. empty
// reports an element with no pairs at all (",,"), which lists ignore (RFC 9110 §5.6.1).
func (p *forwardedParser) nextFor() (val string, empty bool) {
	seen, bad, pairs := false, false, false
	for p.i < len(p.s) {
		key := p.token()
		pairs = pairs || key != ""
		if p.i < len(p.s) && p.s[p.i] == '=' {
			p.i++
			pairs = true
			v, ok := p.value()
			if strings.EqualFold(key, "for") {
				bad = bad || seen || !ok
				val, seen = v, true
			}
		} else if key != "" {
			bad = true
		}
		p.skipSpace()
		if p.i >= len(p.s) {
			break
		}
		c := p.s[p.i]
		p.i++
		if c == ',' {
			break
		}
		if c != ';' {
			p.skipTo(",")
			return "", false
		}
	}
	if bad {
		return "", false
	}
	return val, !pairs
}

// token reads up to the next delimiter, trimmed.
func (p *forwardedParser) token() string {
	p.skipSpace()
	start := p.i
	for p.i < len(p.s) && !strings.ContainsRune("=;,\" \t", rune(p.s[p.i])) {
		p.i++
	}
	return p.s[start:p.i]
}

// value reads a token or a quoted-string (RFC 9110 §5.6.4), unescaping quoted pairs.
func (p *forwardedParser) value() (string, bool) {
	if p.i >= len(p.s) || p.s[p.i] != '"' {
		return p.token(), true
	}
	p.i++
	start, escaped := p.i, false
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case '\\':
			escaped = true
			p.i += 2
			continue
		case '"':
			v := p.s[start:p.i]
			p.i++
			if escaped {
				v = unescapeQuoted(v)
			}
			return v, true
		}
		p.i++
	}
	p.i = len(p.s)
	return "", false
}

func (p *forwardedParser) skipSpace() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t') {
		p.i++
	}
}

// skipTo moves past the next byte of set (or to the end), for resynchronising after an error.
func (p *forwardedParser) skipTo(set string) {
	for p.i < len(p.s) {
		c := p.s[p.i]
		p.i++
		if strings.IndexByte(set, c) >= 0 {
			return
		}
	}
}

// unescapeQuoted removes the backslashes of quoted-pairs.
func unescapeQuoted(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
