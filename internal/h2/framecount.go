package h2

import (
	"errors"
	"io"

	"golang.org/x/net/http2"
)

// errContinuationFlood is returned by frameCounter's Read past its bound.
var errContinuationFlood = errors.New("h2: too many CONTINUATION frames in a header block")

// frameCounter sits between the socket's buffered reader and the Framer and follows the frame
// boundaries in the bytes going through, to count the CONTINUATION frames of a header block.
// The Framer reads a block's CONTINUATIONs inside one ReadFrame call and bounds only the
// block's decoded size, so a stream of empty CONTINUATIONs would keep it reading forever; this
// is the one place that sees every frame go by. It reads the frame header's length and type
// only: the Framer still checks everything else.
type frameCounter struct {
	r                io.Reader
	maxContinuations int

	hdr           [9]byte
	hdrHave       int   // bytes of the current frame header seen
	payloadLeft   int64 // payload bytes of the current frame still to go by
	continuations int   // CONTINUATIONs since the last HEADERS or PUSH_PROMISE
}

func (fc *frameCounter) Read(p []byte) (int, error) {
	n, err := fc.r.Read(p)
	if !fc.observe(p[:n]) {
		return 0, errContinuationFlood
	}
	return n, err
}

// observe follows the frames in p, which continues what went by before; it reports false when
// a header block has more CONTINUATIONs than allowed.
func (fc *frameCounter) observe(p []byte) bool {
	for len(p) > 0 {
		if fc.payloadLeft > 0 {
			k := min(int64(len(p)), fc.payloadLeft)
			fc.payloadLeft -= k
			p = p[k:]
			continue
		}
		k := copy(fc.hdr[fc.hdrHave:], p)
		fc.hdrHave += k
		p = p[k:]
		if fc.hdrHave < len(fc.hdr) {
			return true
		}
		fc.hdrHave = 0
		fc.payloadLeft = int64(fc.hdr[0])<<16 | int64(fc.hdr[1])<<8 | int64(fc.hdr[2])
		switch http2.FrameType(fc.hdr[3]) {
		case http2.FrameContinuation:
			fc.continuations++
			if fc.continuations > fc.maxContinuations {
				return false
			}
		default:
			// Any other frame ends a header block (or is a protocol error the Framer
			// reports), so the count starts again.
			fc.continuations = 0
		}
	}
	return true
}
