package trafficstats

import (
	"cmp"
	"slices"
	"strings"
)

// topK counts the most frequent keys of a stream in bounded space with the space-saving
// algorithm: k counters; a key without one takes the smallest counter, inheriting its count as
// the bound of its overestimate. Every key whose true count exceeds n/k (n keys seen) holds a
// counter, and each count is at most its error above the truth. Not safe for concurrent use.
type topK struct {
	k      int
	counts map[string]*Count
}

func newTopK(k int) *topK { return &topK{k: k, counts: make(map[string]*Count, k)} }

// add counts one occurrence of key. The key is copied when it takes a counter, so the caller
// may reuse its bytes (a request's path).
func (t *topK) add(key string) {
	if len(key) > MaxKeyBytes {
		key = truncateUTF8(key, MaxKeyBytes)
	}
	if c, ok := t.counts[key]; ok {
		c.N++
		return
	}
	if len(t.counts) < t.k {
		t.counts[strings.Clone(key)] = &Count{Key: strings.Clone(key), N: 1}
		return
	}
	var min *Count
	for _, c := range t.counts { // k is small: a scan costs less than keeping a heap in order
		if min == nil || c.N < min.N {
			min = c
		}
	}
	delete(t.counts, min.Key)
	min.Key = strings.Clone(key)
	min.Err = min.N
	min.N++
	t.counts[min.Key] = min
}

// top returns the n largest counts, largest first (ties by key, for a stable order).
func (t *topK) top(n int) []Count {
	out := make([]Count, 0, len(t.counts))
	for _, c := range t.counts {
		out = append(out, *c)
	}
	slices.SortFunc(out, func(a, b Count) int {
		if c := cmp.Compare(b.N, a.N); c != 0 {
			return c
		}
		return strings.Compare(a.Key, b.Key)
	})
	return out[:min(n, len(out))]
}

// truncateUTF8 cuts s to at most n bytes without splitting a character.
func truncateUTF8(s string, n int) string {
	for n > 0 && n < len(s) && s[n]&0xc0 == 0x80 {
		n--
	}
	return s[:n]
}
