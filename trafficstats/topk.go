package trafficstats

import (
	"cmp"
	"hash/maphash"
	"maps"
	"slices"
	"strings"
)

// topK counts the most frequent keys of a stream in bounded space with the space-saving
// algorithm: k counters; a key without one takes the smallest counter, inheriting its count as
// the bound of its overestimate. Every key whose true count exceeds n/k (n keys seen) holds a
// counter, and each count is at most its error above the truth.
//
// The counters form a min-heap on their counts, indexed by key, so the smallest is found at the
// root: a key that takes a counter costs O(log k) instead of a scan of all k.
//
// Once all k counters are taken, a key without one is filtered first (Homem and Carvalho,
// "Finding Top-k Elements in Data Streams", 2010, filtered space-saving): it counts in one of
// filterSize counters chosen by a hash of the key, and takes the smallest counter only once
// that filter counter has reached it. On a site with many rarely requested paths most requests
// are of such keys, and they then cost a hash and an increment instead of a counter's eviction
// and a copy of the key. The bounds stay those of space-saving: a filter counter never exceeds
// the smallest counter, which never exceeds n/k, and it counts every occurrence of the keys that
// hash to it while they have no counter (and the count of a key evicted), so a key taking a
// counter inherits it as its overestimate bound. Not safe for concurrent use.
type topK struct {
	k      int
	heap   []*slot          // a min-heap on slot.N
	idx    map[string]*slot // the key's slot
	filter []uint64         // made once the k counters are taken; nil after merge
	seed   maphash.Seed
}

// filterPerKey is the size of a topK's filter per counter: enough that few keys share a filter
// counter with a frequent one, for 8 bytes each.
const filterPerKey = 4

// slot is one counter: its Count and its place in the heap.
type slot struct {
	Count
	at int
}

func newTopK(k int) *topK {
	return &topK{k: k, heap: make([]*slot, 0, k), idx: make(map[string]*slot, k), seed: maphash.MakeSeed()}
}

// add counts one occurrence of key. The key is copied when it takes a counter, so the caller
// may reuse its bytes (a request's path).
func (t *topK) add(key string) {
	if len(key) > MaxKeyBytes {
		key = truncateUTF8(key, MaxKeyBytes)
	}
	if s, ok := t.idx[key]; ok {
		s.N++
		t.down(s.at)
		return
	}
	if len(t.heap) < t.k {
		s := &slot{Count: Count{Key: strings.Clone(key), N: 1}, at: len(t.heap)}
		t.heap = append(t.heap, s)
		t.idx[s.Key] = s
		t.up(s.at)
		return
	}
	if t.filter == nil {
		t.filter = make([]uint64, filterPerKey*t.k)
	}
	s := t.heap[0]
	f := &t.filter[maphash.String(t.seed, key)%uint64(len(t.filter))]
	if *f < s.N { // it stays at most the smallest counter
		*f++
		return
	}
	evicted := &t.filter[maphash.String(t.seed, s.Key)%uint64(len(t.filter))]
	*evicted = max(*evicted, s.N)
	delete(t.idx, s.Key)
	s.Key, s.Err = strings.Clone(key), *f
	s.N = *f + 1
	t.idx[s.Key] = s
	t.down(0)
}

// down moves the slot at i towards the leaves until its children count no less.
func (t *topK) down(i int) {
	h := t.heap
	for {
		l := 2*i + 1
		if l >= len(h) {
			return
		}
		c := l
		if r := l + 1; r < len(h) && h[r].N < h[l].N {
			c = r
		}
		if h[i].N <= h[c].N {
			return
		}
		t.swap(i, c)
		i = c
	}
}

// up moves the slot at i towards the root until its parent counts no more.
func (t *topK) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if t.heap[p].N <= t.heap[i].N {
			return
		}
		t.swap(i, p)
		i = p
	}
}

func (t *topK) swap(i, j int) {
	t.heap[i], t.heap[j] = t.heap[j], t.heap[i]
	t.heap[i].at, t.heap[j].at = i, j
}

// merge adds o's counts to t, as if t had counted o's stream too (Agarwal et al., "Mergeable
// Summaries", 2012): a key one side lacks counts that side's smallest counter, when all its
// counters are taken, as both count and error. The k largest remain, so the merged error stays
// within (n+m)/k.
func (t *topK) merge(o *topK) {
	floorT, floorO := t.floor(), o.floor()
	sum := make(map[string]Count, len(t.heap)+len(o.heap))
	for _, s := range t.heap {
		sum[s.Key] = Count{Key: s.Key, N: s.N + floorO, Err: s.Err + floorO}
	}
	for _, s := range o.heap {
		c, ok := sum[s.Key]
		if !ok {
			c = Count{Key: s.Key, N: floorT, Err: floorT}
		} else {
			c.N, c.Err = c.N-floorO, c.Err-floorO
		}
		c.N, c.Err = c.N+s.N, c.Err+s.Err
		sum[s.Key] = c
	}
	all := slices.SortedFunc(maps.Values(sum), func(a, b Count) int { return cmp.Compare(b.N, a.N) })
	t.heap, t.idx, t.filter = t.heap[:0], make(map[string]*slot, t.k), nil
	for _, c := range all[:min(t.k, len(all))] {
		s := &slot{Count: c, at: len(t.heap)}
		t.heap = append(t.heap, s)
		t.idx[c.Key] = s
		t.up(s.at)
	}
}

// floor is the count a key without a counter may have had: the smallest counter's, once all k
// are taken, else zero.
func (t *topK) floor() uint64 {
	if len(t.heap) < t.k {
		return 0
	}
	return t.heap[0].N
}

// top returns the n largest counts, largest first (ties by key, for a stable order).
func (t *topK) top(n int) []Count {
	out := make([]Count, 0, len(t.heap))
	for _, s := range t.heap {
		out = append(out, s.Count)
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
