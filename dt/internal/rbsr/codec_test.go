package rbsr

import (
	"bytes"
	"errors"
	"math"
	"math/rand/v2"
	"testing"
)

func TestVarintRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	values := []uint64{0, 1, 127, 128, 16383, 16384, 1<<56 - 1, 1 << 56, 1<<63 - 1, 1 << 63, math.MaxUint64 - 1, math.MaxUint64}
	for range 1000 {
		values = append(values, rng.Uint64()>>rng.UintN(64))
	}
	for _, v := range values {
		enc := appendVarint([]byte{0xee}, v)[1:]
		if len(enc) > maxVarintLen || len(enc) > 1 && enc[0] == 0x80 {
			t.Fatalf("varint(%d) = %x: too long or not minimal", v, enc)
		}
		got, n, err := readVarint(append(enc, 0x55))
		if err != nil || got != v || n != len(enc) {
			t.Fatalf("readVarint(%x) = %d, %d, %v; want %d, %d", enc, got, n, err, v, len(enc))
		}
	}
}

func TestVarintMalformed(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, errTruncated},
		{"unterminated", []byte{0x81, 0x80}, errTruncated},
		{"leading zero digit", []byte{0x80, 0x01}, errVarintZero},
		{"65 bits", []byte{0x82, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00}, errVarintLong},
		{"eleven digits", bytes.Repeat([]byte{0xff}, 11), errVarintLong},
	}
	for _, tt := range tests {
		if _, _, err := readVarint(tt.in); !errors.Is(err, tt.want) {
			t.Errorf("%s: readVarint(%x) error = %v, want %v", tt.name, tt.in, err, tt.want)
		}
	}
	// 2^64-1 itself still decodes.
	if v, _, err := readVarint([]byte{0x81, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}); err != nil || v != math.MaxUint64 {
		t.Errorf("max varint = %d, %v", v, err)
	}
}

func TestBoundRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var bounds []bound
	ts := uint64(0)
	for range 500 {
		ts += rng.Uint64N(3) << rng.UintN(40)
		b := bound{ts: ts, prefixLen: rng.IntN(idSize + 1)}
		fillRandom(rng, b.id[:b.prefixLen])
		bounds = append(bounds, b)
	}
	bounds = append(bounds, bound{ts: MaxTimestamp, prefixLen: 32}, infinity)
	e := newEncoder()
	for _, b := range bounds {
		e.bound(b)
	}
	d := decoder{buf: e.buf[1:]}
	for i, want := range bounds {
		got, err := d.bound()
		if err != nil || got != want {
			t.Fatalf("bound %d: got %+v, %v; want %+v", i, got, err, want)
		}
	}
	if !d.empty() {
		t.Fatalf("%d bytes left over", len(d.buf))
	}
}

func TestBoundMalformed(t *testing.T) {
	tests := []struct {
		name   string
		lastTS uint64
		in     []byte
		want   error
	}{
		{"no timestamp", 0, nil, errTruncated},
		{"no prefix length", 0, []byte{0x05}, errTruncated},
		{"prefix of 33", 0, []byte{0x05, 33}, errPrefixLong},
		{"prefix cut short", 0, []byte{0x05, 4, 1, 2}, errTruncated},
		{"offset overflows", math.MaxUint64 - 5, []byte{0x08, 0}, errTSOverflow},
		{"offset reaches infinity", math.MaxUint64 - 5, []byte{0x06, 0}, errTSOverflow},
		{"infinity with prefix", 0, []byte{0x00, 1, 0xff}, errInfPrefix},
	}
	for _, tt := range tests {
		d := decoder{buf: tt.in, lastTS: tt.lastTS}
		if _, err := d.bound(); !errors.Is(err, tt.want) {
			t.Errorf("%s: error = %v, want %v", tt.name, err, tt.want)
		}
	}
}

func TestMinimalBound(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for range 2000 {
		var a, b Item
		a.Timestamp = rng.Uint64N(4)
		b.Timestamp = a.Timestamp + rng.Uint64N(2)
		fillRandom(rng, a.ID[:])
		b.ID = a.ID
		// Share a random-length prefix, then differ.
		k := rng.IntN(idSize)
		fillRandom(rng, b.ID[k:])
		if a.Compare(b) >= 0 {
			a, b = b, a
		}
		if a.Compare(b) == 0 {
			continue
		}
		mb := minimalBound(a, b)
		if cmpItemBound(a, mb) >= 0 || cmpItemBound(b, mb) < 0 {
			t.Fatalf("minimalBound(%v, %v) = %+v is not in (a, b]", a, b, mb)
		}
		if a.Timestamp != b.Timestamp && mb.prefixLen != 0 {
			t.Fatalf("timestamps differ but prefix is %d bytes", mb.prefixLen)
		}
		// One byte shorter would no longer separate them.
		if mb.prefixLen > 0 {
			shorter := mb
			shorter.prefixLen--
			shorter.id[shorter.prefixLen] = 0
			if cmpItemBound(a, shorter) < 0 {
				t.Fatalf("minimalBound(%v, %v) = %+v is not minimal", a, b, mb)
			}
		}
	}
}

func cmpItemBound(it Item, b bound) int { return compareBounds(itemBound(it), b) }
