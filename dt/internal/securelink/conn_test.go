package securelink

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// sendRandom writes size pseudo-random bytes (from seed) to w in writes of random sizes up to
// 3 frames, and returns their SHA-256.
func sendRandom(w io.Writer, seed uint64, size int) ([32]byte, error) {
	rng := rand.New(rand.NewPCG(seed, 0))
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	sum := sha256.Sum256(data)
	for len(data) > 0 {
		n := min(len(data), 1+rng.IntN(3*maxPlaintextSize))
		if _, err := w.Write(data[:n]); err != nil {
			return sum, err
		}
		data = data[n:]
	}
	return sum, nil
}

// transfer sends size random bytes each way at once and checks both arrive intact.
func transfer(t *testing.T, c, s net.Conn, size int) {
	t.Helper()
	var wg sync.WaitGroup
	sums := make([][32]byte, 2)
	errs := make([]error, 2)
	wg.Go(func() { sums[0], errs[0] = sendRandom(c, 1, size) })
	wg.Go(func() { sums[1], errs[1] = sendRandom(s, 2, size) })
	recv := func(r io.Reader) ([32]byte, error) {
		h := sha256.New()
		_, err := io.CopyN(h, r, int64(size))
		return [32]byte(h.Sum(nil)), err
	}
	var gotS, gotC [32]byte
	var errS, errC error
	wg.Go(func() { gotS, errS = recv(s) })
	gotC, errC = recv(c)
	wg.Wait()
	if err := errors.Join(errs[0], errs[1], errS, errC); err != nil {
		t.Fatalf("transfer: %v", err)
	}
	if gotS != sums[0] {
		t.Error("client-to-server data corrupted")
	}
	if gotC != sums[1] {
		t.Error("server-to-client data corrupted")
	}
}

func TestLargeTransfer(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			rawC, rawS := tr.pair(t)
			c, s := linkPair(t, rawC, rawS, nil)
			transfer(t, c, s, 4<<20)
		})
	}
}

func TestRekey(t *testing.T) {
	const threshold = 4 << 10
	rawC, rawS := pipePair(t)
	c, s := linkPair(t, rawC, rawS, func(ce, se *endpoint) {
		ce.rekeyBytes = threshold
		se.rekeyBytes = threshold
	})
	const size = 2 << 20
	transfer(t, c, s, size)
	// A rekey follows the frame that crosses the threshold, so at most threshold+maxFrameSize
	// bytes pass between two rekeys; both ends must agree on how often they happened.
	minRekeys := size / (threshold + maxFrameSize)
	if c.sendRekeys < minRekeys || c.sendRekeys != s.recvRekeys {
		t.Errorf("client->server: %d rekeys sent, %d received, want at least %d", c.sendRekeys, s.recvRekeys, minRekeys)
	}
	if s.sendRekeys < minRekeys || s.sendRekeys != c.recvRekeys {
		t.Errorf("server->client: %d rekeys sent, %d received, want at least %d", s.sendRekeys, c.recvRekeys, minRekeys)
	}
	// Small frames cross the threshold too.
	for i := range 3 * threshold / 100 {
		exchange(t, c, s, bytes.Repeat([]byte{byte(i)}, 100-tagSize))
	}
	if c.sendRekeys < minRekeys+2 {
		t.Errorf("small frames did not trigger rekeys: %d", c.sendRekeys)
	}
}

// TestRekeyMismatch shows that rekeying really changes the key: ends that rekey at different
// points cannot talk.
func TestRekeyMismatch(t *testing.T) {
	rawC, rawS := pipePair(t)
	c, s := linkPair(t, rawC, rawS, func(ce, se *endpoint) {
		ce.rekeyBytes = 4 << 10
		se.rekeyBytes = 8 << 10
	})
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() {
		for {
			if _, err := c.Write(make([]byte, 1000)); err != nil {
				return
			}
		}
	})
	_, err := io.Copy(io.Discard, s)
	wantErr(t, "Read", err, ErrAuth)
	if s.recvBytes == 0 && s.recvRekeys == 0 {
		t.Error("nothing was received before the failure")
	}
}

// tamperConn is a man in the middle on the sending side of a link: it reassembles the frames
// written to it and lets change modify, drop, duplicate or reorder each before passing it on.
type tamperConn struct {
	net.Conn
	mu      sync.Mutex
	pending []byte
	frames  int
	// change returns the bytes to send in place of frame number i (header included), and
	// whether to close the connection after them.
	change func(i int, frame []byte) (out []byte, hangUp bool)
}

func (t *tamperConn) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.pending = append(t.pending, p...)
	for len(t.pending) >= frameHeaderSize {
		n := frameHeaderSize + int(binary.BigEndian.Uint16(t.pending))
		if len(t.pending) < n {
			break
		}
		frame := bytes.Clone(t.pending[:n])
		t.pending = t.pending[n:]
		out, hangUp := t.change(t.frames, frame)
		t.frames++
		if len(out) > 0 {
			if _, err := t.Conn.Write(out); err != nil {
				return 0, err
			}
		}
		if hangUp {
			t.Conn.Close()
			return 0, net.ErrClosed
		}
	}
	return len(p), nil
}

func TestTamperedStream(t *testing.T) {
	const (
		victim  = 3    // the application message tampered with
		msgSize = 1000 // bytes per message, one frame each
		msgs    = 200  // messages the sender tries to send
	)
	var held []byte
	cases := []struct {
		name string
		// change is applied to the victim's frame; next to the frame after it.
		change func(frame []byte) ([]byte, bool)
		next   func(frame []byte) ([]byte, bool)
		// delivered is how many messages arrive intact before the error.
		delivered int
		want      error
	}{
		{name: "flipped ciphertext bit", change: func(f []byte) ([]byte, bool) {
			f[frameHeaderSize+100] ^= 0x04
			return f, false
		}, delivered: victim, want: ErrAuth},
		{name: "flipped tag bit", change: func(f []byte) ([]byte, bool) {
			f[len(f)-1] ^= 0x80
			return f, false
		}, delivered: victim, want: ErrAuth},
		{name: "replayed frame", change: func(f []byte) ([]byte, bool) {
			return append(bytes.Clone(f), f...), false
		}, delivered: victim + 1, want: ErrAuth},
		{name: "dropped frame", change: func(f []byte) ([]byte, bool) {
			return nil, false
		}, delivered: victim, want: ErrAuth},
		{name: "reordered frames", change: func(f []byte) ([]byte, bool) {
			held = f
			return nil, false
		}, next: func(f []byte) ([]byte, bool) {
			return append(f, held...), false
		}, delivered: victim, want: ErrAuth},
		{name: "truncated frame", change: func(f []byte) ([]byte, bool) {
			return f[:len(f)/2], true
		}, delivered: victim, want: ErrMalformed},
		{name: "over-long length", change: func(f []byte) ([]byte, bool) {
			binary.BigEndian.PutUint16(f, maxFrameSize)
			return f, false
		}, delivered: victim, want: ErrAuth},
		{name: "over-long length, then hang up", change: func(f []byte) ([]byte, bool) {
			binary.BigEndian.PutUint16(f, maxFrameSize)
			return f, true
		}, delivered: victim, want: ErrMalformed},
		{name: "length shorter than a tag", change: func(f []byte) ([]byte, bool) {
			binary.BigEndian.PutUint16(f, tagSize-1)
			return f, false
		}, delivered: victim, want: ErrMalformed},
		{name: "length shorter than the frame", change: func(f []byte) ([]byte, bool) {
			binary.BigEndian.PutUint16(f, uint16(len(f)-frameHeaderSize-1))
			return f, false
		}, delivered: victim, want: ErrAuth},
	}
	for _, tc := range cases {
		for _, dir := range []string{"client to server", "server to client"} {
			t.Run(tc.name+"/"+dir, func(t *testing.T) {
				// Frames 0 and 1 of either direction belong to the handshake.
				target := 2 + victim
				mitm := func(c net.Conn) net.Conn {
					return &tamperConn{Conn: c, change: func(i int, f []byte) ([]byte, bool) {
						switch {
						case i == target:
							return tc.change(f)
						case i == target+1 && tc.next != nil:
							return tc.next(f)
						}
						return f, false
					}}
				}
				rawC, rawS := pipePair(t)
				var sender, receiver *Conn
				if dir == "client to server" {
					sender, receiver = linkPair(t, mitm(rawC), rawS, nil)
				} else {
					receiver, sender = linkPair(t, rawC, mitm(rawS), nil)
				}
				var wg sync.WaitGroup
				defer wg.Wait()
				wg.Go(func() {
					for i := range msgs {
						if _, err := sender.Write(bytes.Repeat([]byte{byte(i)}, msgSize)); err != nil {
							return
						}
					}
					sender.Close()
				})
				buf := make([]byte, msgSize)
				for i := range tc.delivered {
					if _, err := io.ReadFull(receiver, buf); err != nil {
						t.Fatalf("message %d: %v", i, err)
					}
					if !bytes.Equal(buf, bytes.Repeat([]byte{byte(i)}, msgSize)) {
						t.Fatalf("message %d corrupted", i)
					}
				}
				n, err := io.ReadFull(receiver, buf)
				wantErr(t, fmt.Sprintf("read after %d messages (%d bytes)", tc.delivered, n), err, tc.want)
				if n != 0 {
					t.Errorf("%d bytes delivered from the tampered message", n)
				}
				// The error is final and the connection is closed.
				_, again := receiver.Read(buf)
				if again != err {
					t.Errorf("second read: %v, want the same error", again)
				}
				receiver.conn.SetWriteDeadline(time.Now()) // an open pipe fails instead of blocking
				if _, err := receiver.conn.Write([]byte{0}); !errors.Is(err, io.ErrClosedPipe) {
					t.Errorf("underlying connection still open: %v", err)
				}
				receiver.Close() // release the sender even if the check above failed
			})
		}
	}
}

func TestConcurrentReadWrite(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			rawC, rawS := tr.pair(t)
			c, s := linkPair(t, rawC, rawS, nil)
			const writers, records = 4, 40
			var wg sync.WaitGroup
			// Each end runs several writers at once and one reader; every record must arrive
			// whole, since one Write's bytes are contiguous.
			for _, pair := range [][2]*Conn{{c, s}, {s, c}} {
				from, to := pair[0], pair[1]
				for w := range writers {
					wg.Go(func() {
						for i := range records {
							if _, err := from.Write(record(w, i)); err != nil {
								t.Errorf("write: %v", err)
								return
							}
						}
					})
				}
				wg.Go(func() {
					next := make([]int, writers)
					for range writers * records {
						w, i, err := readRecord(to)
						if err != nil {
							t.Errorf("read: %v", err)
							return
						}
						if i != next[w] {
							t.Errorf("writer %d: record %d, want %d", w, i, next[w])
							return
						}
						next[w]++
					}
				})
			}
			wg.Wait()
		})
	}
}

// record returns the i-th record of writer w: a header (writer, index, length) and a body of
// up to two frames' worth of a pattern, so that records span frames.
func record(w, i int) []byte {
	body := bytes.Repeat([]byte{byte(w), byte(i)}, (i%5)*maxPlaintextSize/4+1)
	r := binary.BigEndian.AppendUint32(nil, uint32(w))
	r = binary.BigEndian.AppendUint32(r, uint32(i))
	r = binary.BigEndian.AppendUint32(r, uint32(len(body)))
	return append(r, body...)
}

// readRecord reads one record and checks its body.
func readRecord(r io.Reader) (w, i int, err error) {
	var hdr [12]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, 0, err
	}
	w, i = int(binary.BigEndian.Uint32(hdr[:])), int(binary.BigEndian.Uint32(hdr[4:]))
	body := make([]byte, binary.BigEndian.Uint32(hdr[8:]))
	if _, err := io.ReadFull(r, body); err != nil {
		return 0, 0, err
	}
	if !bytes.Equal(append(hdr[:], body...), record(w, i)) {
		return 0, 0, fmt.Errorf("record %d of writer %d interleaved or corrupted", i, w)
	}
	return w, i, nil
}

// gatedConn writes the first split bytes of each Write, then waits for gate before the rest.
type gatedConn struct {
	net.Conn
	split int
	gate  chan struct{}
}

func (g gatedConn) Write(p []byte) (int, error) {
	n, err := g.Conn.Write(p[:g.split])
	if err != nil {
		return n, err
	}
	<-g.gate
	m, err := g.Conn.Write(p[g.split:])
	return n + m, err
}

func TestReadDeadlineInsideFrameResumes(t *testing.T) {
	const msg = "split across a deadline"
	for _, split := range []int{1, frameHeaderSize, frameHeaderSize + 5} {
		t.Run(fmt.Sprintf("after %d bytes", split), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				rawC, rawS := net.Pipe()
				c, s := linkPair(t, rawC, rawS, nil)
				gate := make(chan struct{})
				// Only transport frames from here on are split.
				c.conn = gatedConn{c.conn, split, gate}
				go c.Write([]byte(msg))

				s.SetReadDeadline(time.Now().Add(time.Second))
				buf := make([]byte, 100)
				_, err := s.Read(buf)
				wantErr(t, "read with part of a frame", err, os.ErrDeadlineExceeded)

				s.SetReadDeadline(time.Time{})
				close(gate)
				n, err := s.Read(buf)
				if err != nil || string(buf[:n]) != msg {
					t.Fatalf("read after the deadline: %q, %v", buf[:n], err)
				}
			})
		})
	}
}

func TestWriteErrorIsFinal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rawC, rawS := net.Pipe()
		c, _ := linkPair(t, rawC, rawS, nil)
		c.SetWriteDeadline(time.Now().Add(time.Second))
		_, err := c.Write([]byte("nobody reads this"))
		wantErr(t, "write", err, os.ErrDeadlineExceeded)
		c.SetWriteDeadline(time.Time{})
		if _, again := c.Write([]byte("x")); again != err {
			t.Fatalf("write after a failed write: %v, want %v", again, err)
		}
	})
}

func TestCloseUnblocksRead(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rawC, rawS := net.Pipe()
		c, s := linkPair(t, rawC, rawS, nil)
		errc := make(chan error)
		go func() {
			_, err := s.Read(make([]byte, 10))
			errc <- err
		}()
		synctest.Wait()
		s.Close()
		if err := <-errc; !errors.Is(err, io.ErrClosedPipe) {
			t.Errorf("blocked Read after Close: %v", err)
		}
		// The peer sees a clean end of stream.
		if _, err := c.Read(make([]byte, 10)); err != io.EOF {
			t.Errorf("peer's Read after Close: %v, want io.EOF", err)
		}
	})
}

func TestEmptyWriteAndRead(t *testing.T) {
	rawC, rawS := pipePair(t)
	c, s := linkPair(t, rawC, rawS, nil)
	if n, err := c.Write(nil); n != 0 || err != nil {
		t.Fatalf("empty write: %d, %v", n, err)
	}
	if n, err := s.Read(nil); n != 0 || err != nil {
		t.Fatalf("empty read: %d, %v", n, err)
	}
	exchange(t, c, s, []byte("after nothing"))
}
