package rbsr

import (
	"errors"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"testing"
)

// checkRun reconciles a against b and requires have and need to be exactly the set differences,
// with no id reported twice.
func checkRun(t *testing.T, a, b []Item, limit int) runStats {
	t.Helper()
	have, need, st := reconcile(t, NewSet(a), NewSet(b), limit)
	wantHave, wantNeed := truth(a, b)
	checkSame(t, "have", have, wantHave)
	checkSame(t, "need", need, wantNeed)
	return st
}

func checkSame(t *testing.T, what string, got, want [][32]byte) {
	t.Helper()
	got = sortIDs(slices.Clone(got))
	if len(got) != len(want) {
		t.Fatalf("%s: %d ids, want %d", what, len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("%s: id %d is %x, want %x", what, i, got[i], want[i])
		}
	}
}

func TestReconcileCases(t *testing.T) {
	rng := rand.New(rand.NewPCG(20, 21))
	base := genItems(rng, 5000)
	sameTS := func(n int) []Item { // one timestamp, many ids
		items := make([]Item, n)
		for i := range items {
			items[i].Timestamp = 42
			fillRandom(rng, items[i].ID[:])
			items[i].ID[0], items[i].ID[1] = 7, 7 // long shared prefixes
		}
		return items
	}
	maxTS := func(n int) []Item { // at the top of the timestamp space
		items := genItems(rng, n)
		for i := range items {
			items[i].Timestamp = MaxTimestamp - uint64(i%3)
		}
		return items
	}
	type tc struct {
		name string
		a, b []Item
	}
	var cases []tc
	for _, d := range []int{0, 1, 10, 1000} {
		a, b := splitDiff(rng, base, d)
		cases = append(cases, tc{name: "diff " + itoa(d), a: a, b: b})
	}
	st := sameTS(600)
	sa, sb := splitDiff(rng, st, 40)
	mt := maxTS(300)
	ma, mb := splitDiff(rng, mt, 30)
	cases = append(cases,
		tc{"disjoint", base[:2500], base[2500:]},
		tc{"interleaved disjoint", everyOther(base, 0), everyOther(base, 1)},
		tc{"initiator empty", nil, base},
		tc{"responder empty", base, nil},
		tc{"both empty", nil, nil},
		tc{"tiny", base[:3], base[1:5]},
		tc{"subset", base[:4000], base},
		tc{"superset", base, base[1000:]},
		tc{"equal timestamps", sa, sb},
		tc{"max timestamp", ma, mb},
		tc{"only max timestamp", []Item{{Timestamp: MaxTimestamp}}, nil},
	)
	for _, c := range cases {
		for _, limit := range []int{0, MinFrameSizeLimit} {
			t.Run(c.name+"/limit "+itoa(limit), func(t *testing.T) {
				checkRun(t, c.a, c.b, limit)
				checkRun(t, c.b, c.a, limit)
			})
		}
	}
}

func everyOther(items []Item, off int) []Item {
	var out []Item
	for i := off; i < len(items); i += 2 {
		out = append(out, items[i])
	}
	return out
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestReconcileRoundsWhenEqual(t *testing.T) {
	rng := rand.New(rand.NewPCG(22, 23))
	items := genItems(rng, 20_000)
	st := checkRun(t, items, slices.Clone(items), 0)
	// One round trip: 16 fingerprints out, the bare version byte back.
	if st.rounds != 1 {
		t.Errorf("equal sets took %d rounds, want 1", st.rounds)
	}
}

func TestFrameSizeLimit(t *testing.T) {
	rng := rand.New(rand.NewPCG(24, 25))
	base := genItems(rng, 20_000)
	a, b := splitDiff(rng, base, 3000)
	unlimited := checkRun(t, a, b, 0)
	if unlimited.maxFrame <= MinFrameSizeLimit {
		t.Fatalf("unlimited run's largest frame is %d bytes; the test needs one above the limit", unlimited.maxFrame)
	}
	for _, limit := range []int{1, MinFrameSizeLimit, 10_000} {
		st := checkRun(t, a, b, limit) // every message is checked against the (raised) limit
		if st.rounds <= unlimited.rounds {
			t.Errorf("limit %d: %d rounds, unlimited %d; the limit did not bind", limit, st.rounds, unlimited.rounds)
		}
		if st.maxFrame > max(limit, MinFrameSizeLimit) {
			t.Errorf("limit %d: frame of %d bytes", limit, st.maxFrame)
		}
	}
	// A responder with far more ids than fit in a frame answers an empty initiator in chunks.
	checkRun(t, nil, base, MinFrameSizeLimit)
}

func TestRangeCap(t *testing.T) {
	// Disjoint sets make every range differ, so unlimited messages would hold thousands of
	// ranges. With the cap lowered, messages are cut there (checked by reconcileWith) and the
	// run still finds every difference.
	rng := rand.New(rand.NewPCG(26, 27))
	base := genItems(rng, 20_000)
	a, b := everyOther(base, 0), everyOther(base, 1)
	_, _, free := reconcile(t, NewSet(a), NewSet(b), 0)
	const lowCap = 100
	if free.maxRanges <= lowCap {
		t.Fatalf("uncapped run peaks at %d ranges; the test needs more than %d", free.maxRanges, lowCap)
	}
	ini, res := NewInitiator(NewSet(a), 0), NewResponder(NewSet(b), 0)
	ini.p.maxRanges, res.p.maxRanges = lowCap, lowCap
	have, need, st := reconcileWith(t, ini, res)
	wantHave, wantNeed := truth(a, b)
	checkSame(t, "have", have, wantHave)
	checkSame(t, "need", need, wantNeed)
	if st.maxRanges > lowCap || st.rounds <= free.rounds {
		t.Errorf("capped run: %d ranges max, %d rounds (uncapped %d)", st.maxRanges, st.rounds, free.rounds)
	}
}

func TestInitiatorState(t *testing.T) {
	s := NewSet(genItems(rand.New(rand.NewPCG(1, 1)), 100))
	ini := NewInitiator(s, 0)
	if _, _, _, err := ini.Reconcile([]byte{ProtocolVersion}); !errors.Is(err, ErrState) {
		t.Errorf("Reconcile before Initiate: %v, want ErrState", err)
	}
	msg, err := ini.Initiate()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ini.Initiate(); !errors.Is(err, ErrState) {
		t.Errorf("second Initiate: %v, want ErrState", err)
	}
	reply, err := NewResponder(s, 0).Respond(msg)
	if err != nil {
		t.Fatal(err)
	}
	next, _, _, err := ini.Reconcile(reply)
	if err != nil || next != nil {
		t.Fatalf("Reconcile = %x, %v; want finished", next, err)
	}
	if _, _, _, err := ini.Reconcile(reply); !errors.Is(err, ErrState) {
		t.Errorf("Reconcile after finishing: %v, want ErrState", err)
	}
	// An error ends the run too.
	ini = NewInitiator(s, 0)
	if _, err := ini.Initiate(); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := ini.Reconcile([]byte{ProtocolVersion, 0x05}); !errors.Is(err, ErrMalformed) {
		t.Fatalf("truncated reply: %v, want ErrMalformed", err)
	}
	if _, _, _, err := ini.Reconcile(reply); !errors.Is(err, ErrState) {
		t.Errorf("Reconcile after an error: %v, want ErrState", err)
	}
}

func TestMalformedMessages(t *testing.T) {
	s := NewSet(genItems(rand.New(rand.NewPCG(2, 2)), 100))
	fp := make([]byte, fingerprintSize)
	cat := func(parts ...[]byte) []byte { return slices.Concat(parts...) }
	v := []byte{ProtocolVersion}
	tests := []struct {
		name string
		msg  []byte
		want error
	}{
		{"empty", nil, ErrMalformed},
		{"version 0x62", []byte{0x62}, ErrUnsupportedVersion},
		{"version 0x00", []byte{0x00, 0x00, 0x00, 0x00}, ErrUnsupportedVersion},
		{"truncated varint", cat(v, []byte{0x85}), ErrMalformed},
		{"varint overflow", cat(v, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}), ErrMalformed},
		{"missing mode", cat(v, []byte{0x05, 0x00}), ErrMalformed},
		{"unknown mode", cat(v, []byte{0x05, 0x00, 0x03}), ErrMalformed},
		{"prefix too long", cat(v, []byte{0x05, 33}, make([]byte, 33), []byte{0}), ErrMalformed},
		{"short fingerprint", cat(v, []byte{0x00, 0x00, 0x01}, fp[:15]), ErrMalformed},
		{"id list longer than message", cat(v, []byte{0x00, 0x00, 0x02, 0x02}, make([]byte, 40)), ErrMalformed},
		{"huge id count", cat(v, []byte{0x00, 0x00, 0x02, 0x8f, 0xff, 0xff, 0xff, 0x7f}), ErrMalformed},
		{"bounds out of order", cat(v, []byte{0x05, 0x01, 0x09, 0x00}, []byte{0x01, 0x01, 0x08, 0x00}), ErrMalformed},
		{"range after infinity", cat(v, []byte{0x00, 0x00, 0x00}, []byte{0x00, 0x00, 0x00}), ErrMalformed},
		{"infinity with prefix", cat(v, []byte{0x00, 0x01, 0x01, 0x00}), ErrMalformed},
	}
	for _, tt := range tests {
		if _, err := NewResponder(s, 0).Respond(tt.msg); !errors.Is(err, tt.want) {
			t.Errorf("%s: Respond error = %v, want %v", tt.name, err, tt.want)
		}
		ini := NewInitiator(s, 0)
		if _, err := ini.Initiate(); err != nil {
			t.Fatal(err)
		}
		if _, _, _, err := ini.Reconcile(tt.msg); !errors.Is(err, tt.want) {
			t.Errorf("%s: Reconcile error = %v, want %v", tt.name, err, tt.want)
		}
	}
}

func TestTooManyRanges(t *testing.T) {
	s := NewSet(genItems(rand.New(rand.NewPCG(3, 3)), 10))
	msg := []byte{ProtocolVersion}
	for i := 0; i < MaxRanges; i++ {
		msg = append(msg, 0x01, 0x00, modeSkip) // empty ranges at timestamp 0
	}
	if _, err := NewResponder(s, 0).Respond(msg); err != nil {
		t.Fatalf("MaxRanges ranges: %v", err)
	}
	msg = append(msg, 0x01, 0x00, modeSkip)
	if _, err := NewResponder(s, 0).Respond(msg); !errors.Is(err, ErrMalformed) {
		t.Fatalf("MaxRanges+1 ranges: %v, want ErrMalformed", err)
	}
}

func TestResponderConcurrent(t *testing.T) {
	rng := rand.New(rand.NewPCG(28, 29))
	base := genItems(rng, 3000)
	shared := NewSet(base)
	res := NewResponder(shared, 0)
	var wg sync.WaitGroup
	for i := range 4 {
		a, _ := splitDiff(rand.New(rand.NewPCG(uint64(i), 0)), base, 50)
		wg.Go(func() {
			ini := NewInitiator(NewSet(a), 0)
			msg, err := ini.Initiate()
			var need [][32]byte
			for err == nil && msg != nil {
				var reply []byte
				if reply, err = res.Respond(msg); err == nil {
					var n [][32]byte
					msg, _, n, err = ini.Reconcile(reply)
					need = append(need, n...)
				}
			}
			if err != nil {
				t.Error(err)
			}
			if len(need) != 25 {
				t.Errorf("initiator %d: need %d ids, want 25", i, len(need))
			}
		})
	}
	wg.Wait()
}
