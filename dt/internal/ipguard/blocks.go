package ipguard

import (
	"net/netip"
	"slices"
	"time"
)

// Block is one blocked prefix, as listed by [Guard.Blocks].
type Block struct {
	// Prefix is the blocked key (an IPv4 /32 or IPv6 /64) or an IPv6 /48.
	Prefix netip.Prefix
	// Since is when the block began. The stored state does not hold it: a loaded block's Since
	// is Until less the duration its Count calls for under the Config it is loaded with.
	Since time.Time
	// Until is when the block ends.
	Until time.Time
	// Reason is one of BlockReasonFailures, BlockReasonConnections and BlockReasonSubnet.
	Reason string
	// Count is how many times the prefix has been blocked, this block included, within the
	// block memory; it chose this block's duration.
	Count int
}

// blockTable holds blocks and the block history that drives escalation: an entry stays after its
// block ended, until BlockMemory later, so that the next block of the prefix lasts longer. It is
// guarded by Guard.mu.
type blockTable struct {
	entries map[netip.Prefix]*Block
	// subnets indexes the IPv6 /64 entries by their /48, so the /48 escalation counts only
	// the /64s of one /48 rather than every block.
	subnets map[netip.Prefix]map[netip.Prefix]struct{}
}

func newBlockTable() blockTable {
	return blockTable{
		entries: make(map[netip.Prefix]*Block),
		subnets: make(map[netip.Prefix]map[netip.Prefix]struct{}),
	}
}

// active returns the end of p's block if p is blocked at now.
func (t *blockTable) active(p netip.Prefix, now time.Time) (time.Time, bool) {
	if b := t.entries[p]; b != nil && b.Until.After(now) {
		return b.Until, true
	}
	return time.Time{}, false
}

// covering returns the latest end among the blocks covering key at now: the key's own block
// and, for IPv6, its /48's.
func (t *blockTable) covering(key netip.Prefix, now time.Time) (time.Time, bool) {
	if len(t.entries) == 0 {
		return time.Time{}, false
	}
	until, blocked := t.active(key, now)
	if sub, ok := subnetOf(key); ok {
		if u, ok := t.active(sub, now); ok {
			blocked = true
			if u.After(until) {
				until = u
			}
		}
	}
	return until, blocked
}

// block blocks p from now, for the duration its block count calls for, and returns the block.
func (t *blockTable) block(p netip.Prefix, reason string, now time.Time, cfg *Config) Block {
	count := 1
	if old := t.entries[p]; old != nil && now.Before(old.Until.Add(cfg.BlockMemory)) {
		count = old.Count + 1
	}
	b := &Block{Prefix: p, Since: now, Until: now.Add(cfg.blockDuration(count)), Reason: reason, Count: count}
	t.put(b)
	return *b
}

// put adds or replaces the entry of b.Prefix.
func (t *blockTable) put(b *Block) {
	t.entries[b.Prefix] = b
	if sub, ok := subnetOf(b.Prefix); ok && b.Prefix.Bits() == ipv6KeyBits {
		m := t.subnets[sub]
		if m == nil {
			m = make(map[netip.Prefix]struct{})
			t.subnets[sub] = m
		}
		m[b.Prefix] = struct{}{}
	}
}

// remove deletes p's entry, history included.
func (t *blockTable) remove(p netip.Prefix) {
	delete(t.entries, p)
	if sub, ok := subnetOf(p); ok && p.Bits() == ipv6KeyBits {
		if m := t.subnets[sub]; m != nil {
			delete(m, p)
			if len(m) == 0 {
				delete(t.subnets, sub)
			}
		}
	}
}

// activeIn counts the /64s of the /48 sub that are blocked at now.
func (t *blockTable) activeIn(sub netip.Prefix, now time.Time) int {
	n := 0
	for p := range t.subnets[sub] {
		if _, ok := t.active(p, now); ok {
			n++
		}
	}
	return n
}

// prune forgets entries whose block ended more than memory ago.
func (t *blockTable) prune(now time.Time, memory time.Duration) {
	for p, b := range t.entries {
		if !now.Before(b.Until.Add(memory)) {
			t.remove(p)
		}
	}
}

// list returns the blocks in force at now, sorted by prefix.
func (t *blockTable) list(now time.Time) []Block {
	var out []Block
	for _, b := range t.entries {
		if b.Until.After(now) {
			out = append(out, *b)
		}
	}
	sortBlocks(out)
	return out
}

// all returns every entry, history included, sorted by prefix.
func (t *blockTable) all() []Block {
	out := make([]Block, 0, len(t.entries))
	for _, b := range t.entries {
		out = append(out, *b)
	}
	sortBlocks(out)
	return out
}

// countActive returns how many prefixes are blocked at now.
func (t *blockTable) countActive(now time.Time) int {
	n := 0
	for _, b := range t.entries {
		if b.Until.After(now) {
			n++
		}
	}
	return n
}

func sortBlocks(bs []Block) {
	slices.SortFunc(bs, func(a, b Block) int { return comparePrefixes(a.Prefix, b.Prefix) })
}

// comparePrefixes orders prefixes by address, then by length.
func comparePrefixes(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return a.Bits() - b.Bits()
}
