package trafficstats

import "net/netip"

// remoteIP returns the address of "ip:port", unmapped and without a zone, or the zero Addr.
func remoteIP(remote string) netip.Addr {
	if ip, ok := parseIPv4Port(remote); ok {
		return ip
	}
	ap, err := netip.ParseAddrPort(remote)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap().WithZone("")
}

// parseIPv4Port parses "a.b.c.d:port" in the form netip.ParseAddrPort accepts, the common
// case, without its general parser. ok is false for anything else (IPv6, leading zeros,
// malformed), which the caller parses with netip.
func parseIPv4Port(s string) (ip netip.Addr, ok bool) {
	var b [4]byte
	i := 0
	for o := range b {
		start, v := i, 0
		for ; i < len(s) && i-start < 3 && s[i] >= '0' && s[i] <= '9'; i++ {
			v = v*10 + int(s[i]-'0')
		}
		if i == start || v > 255 || (s[start] == '0' && i-start > 1) {
			return ip, false
		}
		b[o] = byte(v)
		sep := byte('.')
		if o == 3 {
			sep = ':'
		}
		if i >= len(s) || s[i] != sep {
			return ip, false
		}
		i++
	}
	port := s[i:]
	if len(port) == 0 || len(port) > 5 {
		return ip, false
	}
	v := 0
	for j := 0; j < len(port); j++ {
		if port[j] < '0' || port[j] > '9' {
			return ip, false
		}
		v = v*10 + int(port[j]-'0')
	}
	if v > 65535 {
		return ip, false
	}
	return netip.AddrFrom4(b), true
}
