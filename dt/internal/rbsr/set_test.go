package rbsr

import (
	"crypto/sha256"
	"math"
	"math/big"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestNewSet(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	items := genItems(rng, 300)
	// Same timestamps with different ids, duplicates, and the reserved timestamp.
	for i := range 20 {
		it := items[i]
		fillRandom(rng, it.ID[:])
		items = append(items, it, items[i+50])
	}
	items = append(items, Item{Timestamp: math.MaxUint64}, Item{Timestamp: MaxTimestamp})
	rng.Shuffle(len(items), func(i, j int) { items[i], items[j] = items[j], items[i] })
	orig := slices.Clone(items)

	s := NewSet(items)
	if s.Len() != 300+20+1 {
		t.Fatalf("Len = %d, want %d", s.Len(), 321)
	}
	if !slices.Equal(items, orig) {
		t.Fatal("NewSet modified its argument")
	}
	got := slices.Collect(s.All())
	for i := 1; i < len(got); i++ {
		if got[i-1].Compare(got[i]) >= 0 {
			t.Fatalf("items %d and %d out of order", i-1, i)
		}
	}
	if last := got[len(got)-1]; last.Timestamp != MaxTimestamp {
		t.Fatalf("last item %v, want the MaxTimestamp one", last)
	}
}

// naiveFingerprint follows the spec text literally with big integers.
func naiveFingerprint(items []Item) [16]byte {
	sum := new(big.Int)
	for _, it := range items {
		le := slices.Clone(it.ID[:])
		slices.Reverse(le)
		sum.Add(sum, new(big.Int).SetBytes(le))
	}
	sum.Mod(sum, new(big.Int).Lsh(big.NewInt(1), 256))
	be := sum.FillBytes(make([]byte, 32))
	slices.Reverse(be)
	h := sha256.Sum256(appendVarint(be, uint64(len(items))))
	return [16]byte(h[:16])
}

func TestFingerprintMatchesSpec(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	items := genItems(rng, 500)
	// Ids of all 0xff bytes make every limb addition carry.
	for i := range 40 {
		for k := range items[i*3].ID {
			items[i*3].ID[k] = 0xff
		}
		items[i*3].ID[0] = byte(i)
	}
	s := NewSet(items)
	for range 300 {
		lo := rng.IntN(s.Len() + 1)
		hi := lo + rng.IntN(s.Len()-lo+1)
		if got, want := s.fingerprint(lo, hi), naiveFingerprint(s.items[lo:hi]); got != want {
			t.Fatalf("fingerprint(%d, %d) = %x, want %x", lo, hi, got, want)
		}
	}
}

func TestLowerBound(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	s := NewSet(genItems(rng, 400))
	var probes []bound
	for _, it := range s.items[:100] {
		probes = append(probes, itemBound(it), bound{ts: it.Timestamp}, bound{ts: it.Timestamp + 1})
	}
	probes = append(probes, bound{}, infinity)
	for _, b := range probes {
		lo := rng.IntN(s.Len() + 1)
		want := s.Len()
		for i := lo; i < s.Len(); i++ {
			if cmpItemBound(s.items[i], b) >= 0 {
				want = i
				break
			}
		}
		if got := s.lowerBound(lo, s.Len(), b); got != want {
			t.Fatalf("lowerBound(%d, %+v) = %d, want %d", lo, b, got, want)
		}
	}
}
