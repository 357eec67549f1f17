package accesslog

import "sync/atomic"

// RecordBytes is the size of one slot of the queue. A line of up to RecordBytes less a slot's
// header (24 bytes) takes one slot and is formatted in it, the common case; a longer line (a
// long URI, Referer or User-Agent) is formatted on the heap and copied into one more slot per
// further RecordBytes - 24 bytes, the slot it did not fit in left empty.
const RecordBytes = 1024

// slotHeader is the size of a slot's fields before its data.
const slotHeader = 24

// slotData is the line bytes a slot holds.
const slotData = RecordBytes - slotHeader

// skipSlot is the length of a slot that holds no line: the one a line did not fit in.
const skipSlot = ^uint32(0)

// slot is one part of the ring. A line takes consecutive slots; the first holds its length
// and Reopen count, and says when the line is written.
type slot struct {
	// ready is the position of the line that starts here plus one, stored once its bytes are
	// in place; any other value (a line of an earlier lap, or none) means not yet.
	ready atomic.Uint64
	gen   uint64 // Logger.gen at Log; set before ready
	n     uint32 // the line's length, or skipSlot; set before ready
	_     uint32
	data  [slotData]byte
}

// ring is the queue of formatted lines between the requests and the writer: a bounded
// multi-producer, single-consumer ring of slots. A request claims the slots its line needs
// with one compare-and-swap on tail, copies the line in without a lock, and marks it ready;
// the writer reads lines in the order of their claims, so the lines one goroutine logs come
// out in its order, and a line logged before another returned comes out before it. Nothing
// is allocated after newRing.
type ring struct {
	slots []slot
	half  uint64 // the slots in use at which the writer is woken early
	step  uint64 // past half, the writer is woken again at every step more in use
	_     [48]byte
	// tail is the next position to claim. Positions count slots since newRing and never wrap
	// in practice (2^64 slots).
	tail atomic.Uint64
	_    [56]byte
	// head is the first position not yet read: slots before it are free. Only the writer
	// stores it.
	head atomic.Uint64
	_    [56]byte
}

func newRing(size int) *ring {
	return &ring{slots: make([]slot, size), half: uint64(max(1, size/2)), step: uint64(max(1, size/8))}
}

// slotsFor is the number of slots a line of n bytes takes.
func slotsFor(n int) uint64 {
	if uint32(n) == skipSlot {
		return 1
	}
	return uint64(max(1, (n+slotData-1)/slotData))
}

// claim claims n slots. ok reports whether they were free; false means the writer is behind,
// and nothing was claimed. half reports whether they filled the ring to half, or to a further
// eighth of it past half, when the writer is to be woken (again: it has not caught up). The
// caller fills the slots and then calls commit.
func (q *ring) claim(n uint64) (t uint64, ok, half bool) {
	size := uint64(len(q.slots))
	for {
		t = q.tail.Load()
		h := q.head.Load()
		if h > t { // the writer read past the tail loaded: load again
			continue
		}
		used := t - h
		if used+n > size {
			return 0, false, false
		}
		if q.tail.CompareAndSwap(t, t+n) {
			return t, true, q.nudges(used, used+n)
		}
	}
}

// nudges reports whether filling the ring from before to after slots in use reaches half, or
// a further step past half.
func (q *ring) nudges(before, after uint64) bool {
	switch {
	case after < q.half:
		return false
	case before < q.half:
		return true
	}
	return (before-q.half)/q.step != (after-q.half)/q.step
}

// room returns the data of the slot at position t, which the caller claimed, to append a line
// of up to slotData bytes to without moving it.
func (q *ring) room(t uint64) []byte {
	return q.slots[t%uint64(len(q.slots))].data[:0:slotData]
}

// commit hands the line of n bytes (or skipSlot) at position t, claimed and filled, to the
// writer.
func (q *ring) commit(t uint64, n uint32, gen uint64) {
	first := &q.slots[t%uint64(len(q.slots))]
	first.gen, first.n = gen, n
	first.ready.Store(t + 1) // publishes gen, n and the bytes to the writer's Load
}

// put claims the slots line needs, copies it in and commits it, as claim reports.
func (q *ring) put(line []byte, gen uint64) (ok, half bool) {
	n, size := slotsFor(len(line)), uint64(len(q.slots))
	t, ok, half := q.claim(n)
	if !ok {
		return false, false
	}
	rest := line
	for i := range n {
		rest = rest[copy(q.slots[(t+i)%size].data[:], rest):]
	}
	q.commit(t, uint32(len(line)), gen)
	return true, half
}

// peek returns the length (or skipSlot) and Reopen count of the line at position h, or ok
// false when it is not ready (not claimed, or being filled). Only the writer calls it.
func (q *ring) peek(h uint64) (n int, gen uint64, ok bool) {
	s := &q.slots[h%uint64(len(q.slots))]
	if s.ready.Load() != h+1 {
		return 0, 0, false
	}
	return int(s.n), s.gen, true
}

// appendLine appends the n bytes of the line at position h, which peek found ready, and
// returns the position after it.
func (q *ring) appendLine(dst []byte, h uint64, n int) ([]byte, uint64) {
	size := uint64(len(q.slots))
	k := slotsFor(n)
	for i := range k {
		c := min(n, slotData)
		dst = append(dst, q.slots[(h+i)%size].data[:c]...)
		n -= c
	}
	return dst, h + k
}
