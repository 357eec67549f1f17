package rbsr

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"
)

// fuzzSet is the fixed set the message fuzzers run against: enough items to split, some sharing
// a timestamp and a long id prefix.
func fuzzSet() *Set {
	rng := rand.New(rand.NewPCG(50, 51))
	items := genItems(rng, 400)
	for i := range 40 {
		it := items[i*5]
		it.ID[20] ^= 0x01
		items = append(items, it)
	}
	return NewSet(items)
}

// maxSeed keeps seeds small: the fuzzing engine minimises every input that finds new coverage,
// and minimising a message of many kilobytes takes the whole run.
const maxSeed = 1024

// seedMessages adds real protocol messages to a fuzzer's corpus: the messages (up to maxSeed
// bytes) of a few reconciliations against fuzzSet, as seen by either side.
func seedMessages(f *testing.F, addAny func(msg []byte)) {
	add := func(msg []byte) {
		if len(msg) <= maxSeed {
			addAny(msg)
		}
	}
	s := fuzzSet()
	rng := rand.New(rand.NewPCG(52, 53))
	others := [][]Item{nil, genItems(rng, 3), genItems(rng, 100)}
	a, _ := splitDiff(rng, slicesOf(s), 30)
	others = append(others, a)
	for _, o := range others {
		for _, limit := range []int{0, MinFrameSizeLimit} {
			ini := NewInitiator(NewSet(o), limit)
			res := NewResponder(s, limit)
			msg, _ := ini.Initiate()
			for msg != nil {
				add(msg)
				reply, err := res.Respond(msg)
				if err != nil {
					f.Fatal(err)
				}
				add(reply)
				if msg, _, _, err = ini.Reconcile(reply); err != nil {
					f.Fatal(err)
				}
			}
		}
	}
	for _, m := range []string{"", "61", "62", "6100", "610000", "61000001", "6100000200", "62aabbccddeeff",
		"61050103", "6100010100", "61ffffffffffffffffffff7f"} {
		add(mustHex(f, m))
	}
}

func slicesOf(s *Set) []Item {
	var out []Item
	for it := range s.All() {
		out = append(out, it)
	}
	return out
}

// checkDecodeErr requires a decoding error to wrap one of the package's sentinels.
func checkDecodeErr(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrUnsupportedVersion) {
		t.Fatalf("error does not wrap a sentinel: %v", err)
	}
}

func FuzzRespond(f *testing.F) {
	seedMessages(f, func(msg []byte) { f.Add(msg, false); f.Add(msg, true) })
	s := fuzzSet()
	f.Fuzz(func(t *testing.T, msg []byte, limited bool) {
		limit := 0
		if limited {
			limit = MinFrameSizeLimit
		}
		reply, err := NewResponder(s, limit).Respond(msg)
		if err != nil {
			checkDecodeErr(t, err)
			return
		}
		if err := checkWellFormed(reply, limit, false); err != nil {
			t.Fatalf("reply to %x is malformed: %v", msg, err)
		}
	})
}

func FuzzReconcile(f *testing.F) {
	seedMessages(f, func(msg []byte) { f.Add(msg, false); f.Add(msg, true) })
	s := fuzzSet()
	mine := make(map[[32]byte]bool)
	for it := range s.All() {
		mine[it.ID] = true
	}
	f.Fuzz(func(t *testing.T, msg []byte, limited bool) {
		limit := 0
		if limited {
			limit = MinFrameSizeLimit
		}
		ini := NewInitiator(s, limit)
		if _, err := ini.Initiate(); err != nil {
			t.Fatal(err)
		}
		next, have, need, err := ini.Reconcile(msg)
		if err != nil {
			checkDecodeErr(t, err)
			return
		}
		if next != nil {
			if err := checkWellFormed(next, limit, false); err != nil {
				t.Fatalf("next message after %x is malformed: %v", msg, err)
			}
		}
		for _, id := range have {
			if !mine[id] {
				t.Fatalf("have %x is not in the set", id)
			}
		}
		// need is not checked against the set: id lists carry no timestamps, so a hostile reply
		// can list an id the initiator holds in another range (see the package doc).
		seen := make(map[[32]byte]bool)
		for _, id := range append(have, need...) {
			if seen[id] {
				t.Fatalf("%x reported twice", id)
			}
			seen[id] = true
		}
	})
}

// FuzzDifferential builds two sets from the fuzzer's input, reconciles them and compares have and
// need with the true set differences. base items come from a seeded generator; each byte of ops
// then removes one item from a side or adds an item that shares a timestamp (and possibly a long
// id prefix) with an existing one.
func FuzzDifferential(f *testing.F) {
	f.Add(uint64(1), uint16(0), []byte{}, false)
	f.Add(uint64(2), uint16(40), []byte{1, 2, 3, 4, 5, 6, 7}, false)
	f.Add(uint64(3), uint16(700), []byte{0, 0, 0, 9, 200, 17, 33, 100}, true)
	f.Add(uint64(4), uint16(2000), bytes.Repeat([]byte{0x41, 0x86, 0xc3}, 40), true)
	f.Add(uint64(5), uint16(3), bytes.Repeat([]byte{0xff}, 64), false)
	f.Fuzz(func(t *testing.T, seed uint64, n uint16, ops []byte, limited bool) {
		rng := rand.New(rand.NewPCG(seed, 0))
		base := genItems(rng, int(n%3000))
		var a, b []Item
		drop := make(map[int]byte) // index -> sides it is dropped from (bit 0: a, bit 1: b)
		for i, op := range ops {
			if len(base) == 0 {
				break
			}
			idx := (int(op)*131 + i*7919) % len(base)
			switch op % 4 {
			case 0, 1:
				drop[idx] |= 1 << (op % 2)
			case 2, 3: // a sibling: same timestamp, id sharing op/8 leading bytes
				sib := base[idx]
				fillRandom(rng, sib.ID[min(int(op/8), 31):])
				if op%4 == 2 {
					a = append(a, sib)
				} else {
					b = append(b, sib)
				}
			}
		}
		for i, it := range base {
			if drop[i]&1 == 0 {
				a = append(a, it)
			}
			if drop[i]&2 == 0 {
				b = append(b, it)
			}
		}
		limit := 0
		if limited {
			limit = MinFrameSizeLimit
		}
		checkRun(t, a, b, limit)
	})
}

// FuzzVarint decodes arbitrary bytes; whatever decodes must encode back to the bytes read.
func FuzzVarint(f *testing.F) {
	for _, s := range []string{"00", "7f", "8100", "83ff7f", "81ffffffffffffffff7f", "8080", "ffffffffffffffffffff7f", ""} {
		f.Add(mustHex(f, s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		v, n, err := readVarint(in)
		if err != nil {
			return
		}
		if enc := appendVarint(nil, v); !bytes.Equal(enc, in[:n]) {
			t.Fatalf("readVarint(%x) = %d, which encodes as %x", in[:n], v, enc)
		}
	})
}

// FuzzBounds decodes a sequence of bounds from arbitrary bytes; whatever decodes must encode back
// to the bytes read, with the same timestamp offsets.
func FuzzBounds(f *testing.F) {
	for _, s := range []string{"", "0000", "86a091d70e000200", "0501aa0320" + string(bytes.Repeat([]byte("ab"), 32)), "0021", "ff"} {
		f.Add(mustHex(f, s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		d := decoder{buf: in}
		e := newEncoder()
		read := in[:0]
		for !d.empty() {
			b, err := d.bound()
			if err != nil {
				break
			}
			e.bound(b)
			read = in[:len(in)-len(d.buf)]
		}
		if !bytes.Equal(e.buf[1:], read) {
			t.Fatalf("decoded %x, re-encoded as %x", read, e.buf[1:])
		}
	})
}
