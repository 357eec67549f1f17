package accesslog

import "sync"

// maxShards bounds the queue's shards: enough that the request goroutines of a few cores rarely
// find every shard locked, few enough that the writer's sort of a batch stays cheap.
const maxShards = 8

// queueShard is one part of the queue: its own lock and records.
type queueShard struct {
	mu      sync.Mutex
	pending []record // guarded by mu
	spare   []record // the batch the writer is writing; owned by the writer
	_       [64]byte // keeps the next shard's lock off this one's cache line
}

// newShards cuts a queue of size records into shards, the first ones a record larger when size
// does not divide evenly.
func newShards(size int) []queueShard {
	n := min(maxShards, size)
	s := make([]queueShard, n)
	for i := range s {
		c := size / n
		if i < size%n {
			c++
		}
		s[i].pending, s[i].spare = make([]record, 0, c), make([]record, 0, c)
	}
	return s
}

// put copies e into the shard, waiting for its lock only when wait is set. ok reports whether
// e was queued; half whether that made the shard half full, when the writer is woken early.
func (s *queueShard) put(e *Entry, gen uint64, wait bool) (ok, half bool) {
	if wait {
		s.mu.Lock()
	} else if !s.mu.TryLock() {
		return false, false
	}
	defer s.mu.Unlock()
	n := len(s.pending)
	if n == cap(s.pending) {
		return false, false
	}
	s.pending = s.pending[:n+1]
	r := &s.pending[n]
	r.set(e)
	r.gen = gen
	return true, n+1 == max(1, cap(s.pending)/2)
}

// takeAll swaps every shard's records for the batch written before and appends them to
// order. It holds every shard's lock at once, so that the batch is a cut of the queue in time: a
// record logged before another is never left for the next batch while the other is written.
func takeAll(shards []queueShard, order []*record) []*record {
	for i := range shards {
		shards[i].mu.Lock()
	}
	for i := range shards {
		s := &shards[i]
		s.pending, s.spare = s.spare[:0], s.pending
	}
	for i := range shards {
		shards[i].mu.Unlock()
	}
	for i := range shards {
		for j := range shards[i].spare {
			order = append(order, &shards[i].spare[j])
		}
	}
	return order
}
