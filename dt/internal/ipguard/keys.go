package ipguard

import (
	"net/netip"
	"time"

	"golang.org/x/time/rate"
)

// Key lengths. An IPv6 /64 is the smallest prefix one subscriber is normally given (RFC 6177),
// so every address in it is the same party; a /48 is a typical site allocation.
const (
	ipv4KeyBits   = 32
	ipv6KeyBits   = 64
	ipv6SubnetBit = 48
	// ipv4SubnetBits is the IPv4 subnet handshakes are capped by: a /24 is the smallest block
	// routed on the Internet, so one party rarely holds addresses in many of them.
	ipv4SubnetBits = 24
)

// KeyOf returns the key the guard tracks addr under: the IPv4 address as a /32, or its IPv6 /64.
// An IPv4-mapped IPv6 address is treated as the IPv4 address it carries, and a zone is ignored.
// KeyOf returns the zero Prefix for the zero Addr.
func KeyOf(addr netip.Addr) netip.Prefix {
	if !addr.IsValid() {
		return netip.Prefix{}
	}
	addr = addr.WithZone("").Unmap()
	if addr.Is4() {
		return netip.PrefixFrom(addr, ipv4KeyBits)
	}
	p, _ := addr.Prefix(ipv6KeyBits) // cannot fail: addr is valid IPv6 and 64 <= 128
	return p
}

// SubnetOf returns the subnet whose handshakes in flight are capped together
// (Config.MaxHandshakesPerSubnet): the /24 of an IPv4 address, the /48 of an IPv6 one. It returns
// the zero Prefix for the zero Addr.
func SubnetOf(addr netip.Addr) netip.Prefix {
	if !addr.IsValid() {
		return netip.Prefix{}
	}
	addr = addr.WithZone("").Unmap()
	bits := ipv6SubnetBit
	if addr.Is4() {
		bits = ipv4SubnetBits
	}
	p, _ := addr.Prefix(bits) // cannot fail: bits fits either family
	return p
}

// subnetOf returns the /48 that contains an IPv6 key, and false for IPv4 keys.
func subnetOf(key netip.Prefix) (netip.Prefix, bool) {
	if !key.Addr().Is6() {
		return netip.Prefix{}, false
	}
	p, _ := key.Addr().Prefix(ipv6SubnetBit)
	return p, true
}

// unmapPrefix turns an IPv4-mapped IPv6 prefix (::ffff:a.b.c.d/96+n) into the IPv4 prefix
// a.b.c.d/n, since addresses are unmapped before they are matched. Other prefixes are masked.
func unmapPrefix(p netip.Prefix) netip.Prefix {
	if !p.IsValid() {
		return p
	}
	if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
		return netip.PrefixFrom(a.Unmap(), p.Bits()-96).Masked()
	}
	return p.Masked()
}

// keyState is what the guard remembers about one key. It is guarded by Guard.mu.
type keyState struct {
	key      netip.Prefix
	lastSeen time.Time
	limiter  *rate.Limiter
	conns    connCounter
	warnedAt time.Time // last WarnConnections warning; zero if never

	// failures holds the times of the most recent failures, oldest first, at most
	// FailureThreshold of them; a success clears it.
	failures []time.Time
	// strikes holds the times of the most recent strikes (misbehaviour after authenticating). A
	// success does not clear them: the peer authenticates every time before it misbehaves.
	strikes []time.Time

	inflight int // tickets of this key not yet ended; a key in flight is never forgotten

	// prev and next link the guard's recency list: most recently seen at the head.
	prev, next *keyState
}

// connCounter counts events over a sliding window with two fixed windows, weighting the
// previous one by how much of it still overlaps the sliding window (the approach Cloudflare
// described in "How we built rate limiting capable of scaling to millions of domains", 2017).
// It takes 24 bytes per key instead of one timestamp per event; the estimate assumes events
// in the previous window were evenly spread.
type connCounter struct {
	window    int64 // index of the current fixed window: unix nanoseconds / window length
	cur, prev int32
}

// roll moves the counter to the fixed window containing now.
func (c *connCounter) roll(now time.Time, length time.Duration) {
	w := now.UnixNano() / int64(length)
	switch {
	case w == c.window:
	case w == c.window+1:
		c.prev, c.cur, c.window = c.cur, 0, w
	case w > c.window+1:
		c.prev, c.cur, c.window = 0, 0, w
	}
	// A clock that stepped back keeps counting in the newer window: events are not lost.
}

// add counts one event at now and returns the estimate of events in the sliding window.
func (c *connCounter) add(now time.Time, length time.Duration) float64 {
	c.roll(now, length)
	if c.cur < 1<<30 {
		c.cur++
	}
	return c.estimate(now, length)
}

// estimate returns the events counted in the window of the given length ending at now.
func (c *connCounter) estimate(now time.Time, length time.Duration) float64 {
	elapsed := now.UnixNano() - c.window*int64(length)
	overlap := 1 - float64(elapsed)/float64(length)
	if overlap < 0 || overlap > 1 {
		overlap = 0
	}
	return float64(c.prev)*overlap + float64(c.cur)
}

// remove uncounts one event that was counted in the fixed window w: the connection turned out
// to be authenticated.
func (c *connCounter) remove(w int64) {
	switch {
	case w == c.window && c.cur > 0:
		c.cur--
	case w == c.window-1 && c.prev > 0:
		c.prev--
	}
}

// keyList is an intrusive doubly linked list of key states ordered by recency: pushing or
// touching is O(1) and the least recently seen state is at the tail.
type keyList struct {
	head, tail *keyState
	len        int
}

func (l *keyList) pushFront(s *keyState) {
	s.prev, s.next = nil, l.head
	if l.head != nil {
		l.head.prev = s
	} else {
		l.tail = s
	}
	l.head = s
	l.len++
}

func (l *keyList) remove(s *keyState) {
	if s.prev != nil {
		s.prev.next = s.next
	} else {
		l.head = s.next
	}
	if s.next != nil {
		s.next.prev = s.prev
	} else {
		l.tail = s.prev
	}
	s.prev, s.next = nil, nil
	l.len--
}

func (l *keyList) moveToFront(s *keyState) {
	if l.head == s {
		return
	}
	l.remove(s)
	l.pushFront(s)
}
