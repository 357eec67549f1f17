package h2

import (
	"bytes"
	"encoding/binary"
	"testing"

	"golang.org/x/net/http2"
)

// frameBytes encodes a frame header of the given type and length followed by its payload.
func frameBytes(t http2.FrameType, payload []byte) []byte {
	var h [9]byte
	h[0], h[1], h[2] = byte(len(payload)>>16), byte(len(payload)>>8), byte(len(payload))
	h[3] = byte(t)
	binary.BigEndian.PutUint32(h[5:], 1)
	return append(h[:], payload...)
}

// countRef is frameCounter's result computed on the whole input at once, frame by frame.
func countRef(in []byte, max int) bool {
	cont := 0
	for len(in) >= 9 {
		n := int(in[0])<<16 | int(in[1])<<8 | int(in[2])
		if http2.FrameType(in[3]) == http2.FrameContinuation {
			cont++
			if cont > max {
				return false
			}
		} else {
			cont = 0
		}
		in = in[9:]
		if n > len(in) {
			return true
		}
		in = in[n:]
	}
	return true
}

func TestFrameCounterSplits(t *testing.T) {
	var in []byte
	in = append(in, frameBytes(http2.FrameHeaders, []byte("abc"))...)
	for range 3 {
		in = append(in, frameBytes(http2.FrameContinuation, nil)...)
	}
	in = append(in, frameBytes(http2.FramePing, make([]byte, 8))...)
	for range 4 {
		in = append(in, frameBytes(http2.FrameContinuation, []byte("x"))...)
	}
	for _, tc := range []struct {
		max  int
		want bool
	}{{3, false}, {4, true}} {
		for chunk := 1; chunk <= len(in); chunk++ {
			fc := &frameCounter{maxContinuations: tc.max}
			ok := true
			for p := in; len(p) > 0 && ok; {
				k := min(chunk, len(p))
				ok = fc.observe(p[:k])
				p = p[k:]
			}
			if ok != tc.want {
				t.Fatalf("max %d, chunks of %d: %v, want %v", tc.max, chunk, ok, tc.want)
			}
		}
	}
}

// FuzzFrameCounter checks that however the bytes arrive, the counter sees the frames a
// parser of the whole input sees.
func FuzzFrameCounter(f *testing.F) {
	seed := append(frameBytes(http2.FrameHeaders, []byte("h")), bytes.Repeat(frameBytes(http2.FrameContinuation, nil), 20)...)
	f.Add(seed, uint8(7), uint8(16))
	f.Add(frameBytes(http2.FrameData, make([]byte, 300)), uint8(1), uint8(2))
	f.Fuzz(func(t *testing.T, in []byte, chunk, max uint8) {
		size := int(chunk) + 1
		limit := int(max) + 1
		fc := &frameCounter{maxContinuations: limit}
		ok := true
		for p := in; len(p) > 0 && ok; {
			k := min(size, len(p))
			ok = fc.observe(p[:k])
			p = p[k:]
		}
		if want := countRef(in, limit); ok != want {
			t.Fatalf("chunks of %d, max %d: %v, whole input: %v", size, limit, ok, want)
		}
	})
}
