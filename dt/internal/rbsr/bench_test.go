package rbsr

import (
	"math/rand/v2"
	"strconv"
	"testing"
)

// benchSize is the set size the resync figures in package dt's documentation are measured at.
const benchSize = 100_000

// BenchmarkReconcile reports, for two sets of 100,000 items that differ in d items, the bytes
// exchanged (both directions, all rounds) and the round trips of a full reconciliation, with
// unlimited frames and with dt's 64 KiB frame cap. The sets are built once, outside the timer.
func BenchmarkReconcile(b *testing.B) {
	rng := rand.New(rand.NewPCG(100, 101))
	base := genItems(rng, benchSize+1000)
	for _, limit := range []int{0, 64 << 10} {
		for _, d := range []int{0, 10, 100, 1000} {
			a, c := splitDiff(rng, base[:benchSize+d/2], d)
			sa, sc := NewSet(a), NewSet(c)
			b.Run("limit="+strconv.Itoa(limit)+"/diff="+strconv.Itoa(d), func(b *testing.B) {
				var st runStats
				for b.Loop() {
					var have, need [][32]byte
					have, need, st = reconcile(b, sa, sc, limit)
					if len(have)+len(need) != d {
						b.Fatalf("found %d differences, want %d", len(have)+len(need), d)
					}
				}
				b.ReportMetric(float64(st.bytes), "bytes")
				b.ReportMetric(float64(st.rounds), "rounds")
			})
		}
	}
}

// BenchmarkNewSet measures building a 100,000-item set: copy, sort and prefix sums.
func BenchmarkNewSet(b *testing.B) {
	items := genItems(rand.New(rand.NewPCG(102, 103)), benchSize)
	rand.New(rand.NewPCG(1, 1)).Shuffle(len(items), func(i, j int) { items[i], items[j] = items[j], items[i] })
	for b.Loop() {
		NewSet(items)
	}
}

// BenchmarkNewSetAndReconcile measures what one anti-entropy check costs a node from scratch:
// building both 100,000-item sets and reconciling 100 differences.
func BenchmarkNewSetAndReconcile(b *testing.B) {
	rng := rand.New(rand.NewPCG(104, 105))
	a, c := splitDiff(rng, genItems(rng, benchSize+50), 100)
	for b.Loop() {
		have, need, _ := reconcile(b, NewSet(a), NewSet(c), 0)
		if len(have)+len(need) != 100 {
			b.Fatalf("found %d differences, want 100", len(have)+len(need))
		}
	}
}

// BenchmarkFingerprint measures one range fingerprint: a subtraction and a SHA-256.
func BenchmarkFingerprint(b *testing.B) {
	s := NewSet(genItems(rand.New(rand.NewPCG(106, 107)), benchSize))
	for b.Loop() {
		s.fingerprint(123, benchSize-456)
	}
}
