package securelink

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/flynn/noise"
)

// Framing. Every message on the wire, handshake and transport alike, is a 2-byte big-endian
// length followed by that many bytes. The Noise spec leaves framing to the application and
// suggests exactly this (Noise spec §13, "a 16-bit big-endian length field").
const (
	frameHeaderSize = 2
	// maxFrameSize is the largest frame body: the Noise message limit (Noise spec §3), which is
	// also the largest length a 16-bit header can state.
	maxFrameSize = noise.MaxMsgLen
	// tagSize is the ChaCha20-Poly1305 authentication tag (RFC 8439 §2.8) that ends every
	// encrypted frame.
	tagSize = 16
	// maxPlaintextSize is the most application data one transport frame carries.
	maxPlaintextSize = maxFrameSize - tagSize
	// readBufferSize is the read-ahead of a link. It batches small frames into few reads of the
	// socket; frames larger than it are read straight into the frame buffer.
	readBufferSize = 16 << 10
)

// frameReader splits a byte stream into frames. It is robust to any segmentation of the
// stream: a header or body split across reads, down to one byte per read, is reassembled.
//
// A read error other than end of stream, for instance an expired deadline, leaves its position
// intact, so the next call resumes the same frame. This is why it keeps its own counters
// instead of calling io.ReadFull on the whole frame once: a deadline in the middle of a frame
// must not desynchronise the stream, since net.Conn promises that a connection can be used again
// after a deadline is moved.
type frameReader struct {
	r io.Reader
	// hdr holds the length header; nh of its bytes have been read.
	hdr [frameHeaderSize]byte
	nh  int
	// buf holds the body of the current frame; nb of its bytes have been read. It grows to
	// the largest frame seen and is reused, so a returned body is valid until the next call.
	buf []byte
	nb  int
}

// newFrameReader returns a frameReader that reads ahead from r.
func newFrameReader(r io.Reader) *frameReader {
	return &frameReader{r: bufio.NewReaderSize(r, readBufferSize)}
}

// next returns the body of the next frame. It returns io.EOF when the stream ends between two
// frames, an error wrapping ErrMalformed and io.ErrUnexpectedEOF when it ends inside one, and
// any other read error unchanged.
func (f *frameReader) next() ([]byte, error) {
	if f.nh < frameHeaderSize {
		n, err := io.ReadFull(f.r, f.hdr[f.nh:])
		f.nh += n
		if err != nil {
			return nil, f.readError(err)
		}
	}
	size := int(binary.BigEndian.Uint16(f.hdr[:]))
	if cap(f.buf) < size {
		// Only reached with nb == 0: once a body is partly read, buf already fits it.
		f.buf = make([]byte, size)
	}
	body := f.buf[:size]
	if f.nb < size {
		n, err := io.ReadFull(f.r, body[f.nb:])
		f.nb += n
		if err != nil {
			return nil, f.readError(err)
		}
	}
	f.nh, f.nb = 0, 0
	return body, nil
}

// readError maps a read error to what next returns, given how much of the frame was read.
func (f *frameReader) readError(err error) error {
	if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		return err
	}
	if f.nh == 0 {
		return io.EOF
	}
	return fmt.Errorf("%w: stream ends after %d bytes of a frame: %w",
		ErrMalformed, f.nh+f.nb, io.ErrUnexpectedEOF)
}

// writeFrame writes body as one frame with a single Write, so the header and body of a frame
// are never interleaved with another frame even on a writer that does not serialise Writes.
func writeFrame(w io.Writer, body []byte) error {
	if len(body) > maxFrameSize {
		return fmt.Errorf("securelink: frame of %d bytes exceeds %d", len(body), maxFrameSize)
	}
	frame := make([]byte, frameHeaderSize, frameHeaderSize+len(body))
	binary.BigEndian.PutUint16(frame, uint16(len(body)))
	_, err := w.Write(append(frame, body...))
	return err
}
