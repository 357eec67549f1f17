package dt

import "container/list"

// lru is a map bounded to max entries: putting a new key into a full lru forgets the least
// recently used one. It is not safe for concurrent use.
type lru[K comparable, V any] struct {
	max     int
	entries map[K]*list.Element // values are lruEntry
	order   list.List           // front: most recently used
	evicted uint64              // entries forgotten for room
}

type lruEntry[K comparable, V any] struct {
	key K
	val V
}

func newLRU[K comparable, V any](max int) *lru[K, V] {
	return &lru[K, V]{max: max, entries: make(map[K]*list.Element)}
}

// get returns the value of k and marks it as the most recently used.
func (c *lru[K, V]) get(k K) (V, bool) {
	e := c.entries[k]
	if e == nil {
		var zero V
		return zero, false
	}
	c.order.MoveToFront(e)
	return e.Value.(lruEntry[K, V]).val, true
}

// put adds k, which must not be present, as the most recently used entry.
func (c *lru[K, V]) put(k K, v V) {
	if len(c.entries) >= c.max {
		if old := c.order.Back(); old != nil {
			c.order.Remove(old)
			delete(c.entries, old.Value.(lruEntry[K, V]).key)
			c.evicted++
		}
	}
	c.entries[k] = c.order.PushFront(lruEntry[K, V]{key: k, val: v})
}

func (c *lru[K, V]) len() int { return len(c.entries) }
