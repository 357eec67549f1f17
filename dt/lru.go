package dt

// lru is a map bounded to max entries: putting a new key into a full lru forgets the least
// recently used one. It is not safe for concurrent use.
type lru[K comparable, V any] struct {
	max        int
	entries    map[K]*lruEntry[K, V]
	head, tail *lruEntry[K, V] // most and least recently used
	evicted    uint64          // entries forgotten for room
}

type lruEntry[K comparable, V any] struct {
	key        K
	val        V
	prev, next *lruEntry[K, V]
}

func newLRU[K comparable, V any](max int) *lru[K, V] {
	return &lru[K, V]{max: max, entries: make(map[K]*lruEntry[K, V])}
}

// get returns the value of k and marks it as the most recently used.
func (c *lru[K, V]) get(k K) (V, bool) {
	e := c.entries[k]
	if e == nil {
		var zero V
		return zero, false
	}
	c.unlink(e)
	c.pushFront(e)
	return e.val, true
}

// put adds k, which must not be present, as the most recently used entry.
func (c *lru[K, V]) put(k K, v V) {
	if len(c.entries) >= c.max && c.tail != nil {
		old := c.tail
		c.unlink(old)
		delete(c.entries, old.key)
		c.evicted++
	}
	e := &lruEntry[K, V]{key: k, val: v}
	c.entries[k] = e
	c.pushFront(e)
}

func (c *lru[K, V]) len() int { return len(c.entries) }

func (c *lru[K, V]) pushFront(e *lruEntry[K, V]) {
	e.prev, e.next = nil, c.head
	if c.head != nil {
		c.head.prev = e
	} else {
		c.tail = e
	}
	c.head = e
}

func (c *lru[K, V]) unlink(e *lruEntry[K, V]) {
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		c.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		c.tail = e.prev
	}
	e.prev, e.next = nil, nil
}
