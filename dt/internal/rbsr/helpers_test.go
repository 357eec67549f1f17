package rbsr

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// genItems returns n distinct items with timestamps shaped like dt's hybrid logical clocks
// (milliseconds << 16 | counter), several sharing a millisecond, and random ids.
func genItems(rng *rand.Rand, n int) []Item {
	items := make([]Item, n)
	ms := uint64(1_700_000_000_000)
	var counter uint64
	for i := range items {
		if rng.IntN(4) == 0 {
			counter++
		} else {
			ms += 1 + rng.Uint64N(50)
			counter = 0
		}
		items[i].Timestamp = ms<<16 | counter
		fillRandom(rng, items[i].ID[:])
	}
	return items
}

func fillRandom(rng *rand.Rand, b []byte) {
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
}

// split divides items into two sides that share everything but d items, each of which is missing
// from one side (alternating), so |A\B| + |B\A| = d.
func splitDiff(rng *rand.Rand, items []Item, d int) (a, b []Item) {
	missing := make(map[int]int, d) // index -> side that lacks it
	for _, i := range rng.Perm(len(items))[:d] {
		missing[i] = len(missing) % 2
	}
	for i, it := range items {
		side, ok := missing[i]
		if !ok || side != 0 {
			a = append(a, it)
		}
		if !ok || side != 1 {
			b = append(b, it)
		}
	}
	return a, b
}

// truth returns the ids only in a and only in b, sorted.
func truth(a, b []Item) (onlyA, onlyB [][32]byte) {
	inA := make(map[[32]byte]bool)
	inB := make(map[[32]byte]bool)
	for _, it := range NewSet(a).items {
		inA[it.ID] = true
	}
	for _, it := range NewSet(b).items {
		inB[it.ID] = true
	}
	for id := range inA {
		if !inB[id] {
			onlyA = append(onlyA, id)
		}
	}
	for id := range inB {
		if !inA[id] {
			onlyB = append(onlyB, id)
		}
	}
	return sortIDs(onlyA), sortIDs(onlyB)
}

func sortIDs(ids [][32]byte) [][32]byte {
	slices.SortFunc(ids, func(x, y [32]byte) int { return bytes.Compare(x[:], y[:]) })
	return ids
}

// runStats describes one complete reconciliation.
type runStats struct {
	bytes     int // both directions, all rounds
	rounds    int // initiator->responder->initiator round trips
	maxFrame  int // largest message either side sent
	maxRanges int // most ranges in one message
}

// maxTestRounds stops a reconciliation that does not converge.
const maxTestRounds = 10_000

// reconcile runs a full reconciliation of a (initiator) against b (responder), checking every
// message is well-formed and within the limit, and returns have and need (in the order reported).
func reconcile(tb testing.TB, a, b *Set, limit int) (have, need [][32]byte, st runStats) {
	tb.Helper()
	return reconcileWith(tb, NewInitiator(a, limit), NewResponder(b, limit))
}

func reconcileWith(tb testing.TB, ini *Initiator, res *Responder) (have, need [][32]byte, st runStats) {
	tb.Helper()
	limit, maxRanges := res.p.limit, res.p.maxRanges
	msg, err := ini.Initiate()
	if err != nil {
		tb.Fatalf("Initiate: %v", err)
	}
	for msg != nil {
		if st.rounds++; st.rounds > maxTestRounds {
			tb.Fatalf("no convergence after %d rounds", maxTestRounds)
		}
		st.note(tb, msg, limit, maxRanges)
		reply, err := res.Respond(msg)
		if err != nil {
			tb.Fatalf("round %d: Respond: %v", st.rounds, err)
		}
		st.note(tb, reply, limit, maxRanges)
		var h, n [][32]byte
		msg, h, n, err = ini.Reconcile(reply)
		if err != nil {
			tb.Fatalf("round %d: Reconcile: %v", st.rounds, err)
		}
		have, need = append(have, h...), append(need, n...)
	}
	return have, need, st
}

func (st *runStats) note(tb testing.TB, msg []byte, limit, maxRanges int) {
	tb.Helper()
	st.bytes += len(msg)
	st.maxFrame = max(st.maxFrame, len(msg))
	n, err := countRanges(msg, limit, maxRanges, true)
	if err != nil {
		tb.Fatalf("round %d: produced a bad message: %v", st.rounds, err)
	}
	st.maxRanges = max(st.maxRanges, n)
}

// checkWellFormed parses msg as any receiver would and also checks the frame size limit. With
// strict, it also requires strictly ascending bounds, which honest exchanges always produce.
func checkWellFormed(msg []byte, limit int, strict bool) error {
	_, err := countRanges(msg, limit, MaxRanges, strict)
	return err
}

// countRanges is checkWellFormed with a range cap; it returns the number of ranges.
func countRanges(msg []byte, limit, maxRanges int, strict bool) (int, error) {
	if limit > 0 && len(msg) > limit {
		return 0, errorf("%d bytes over the %d limit", len(msg), limit)
	}
	if len(msg) == 0 || msg[0] != ProtocolVersion {
		return 0, errorf("bad version byte")
	}
	in := decoder{buf: msg[1:]}
	var prev bound
	i := 0
	for ; !in.empty(); i++ {
		if i >= maxRanges || prev.isInfinity() {
			return i, errorf("range %d too many or after infinity", i)
		}
		r, err := readRange(&in, prev)
		if err != nil {
			return i, errorf("range %d: %v", i, err)
		}
		if strict && i > 0 && compareBounds(r.upper, prev) == 0 {
			return i, errorf("range %d: empty range", i)
		}
		prev = r.upper
	}
	return i, nil
}

func errorf(format string, args ...any) error { return fmt.Errorf(format, args...) }
