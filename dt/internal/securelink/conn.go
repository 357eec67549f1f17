package securelink

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/flynn/noise"
)

// Peer is the authenticated identity of the other end of a link.
type Peer struct {
	// PublicKey is the peer's Ed25519 public key. The peer proved in the handshake that it holds
	// the matching private key and the network key.
	PublicKey ed25519.PublicKey
	// Hello is the application hello the peer sent (its Config.Hello), at most MaxHelloSize
	// bytes. It is authenticated and was encrypted on the wire; its meaning is up to the caller.
	Hello []byte
}

// Conn is an established link: a net.Conn whose bytes travel in encrypted, authenticated,
// ordered frames. Client and Server return it once the handshake is complete.
//
// Read and Write may be called concurrently with each other. Concurrent Writes are serialised,
// and the bytes of one Write are contiguous in the stream; concurrent Reads are serialised too.
// Close may be called at any time and unblocks both.
//
// A frame that fails its integrity check (modified, replayed, reordered, dropped) or that breaks
// the framing makes Read return an error wrapping ErrAuth or ErrMalformed; the Conn then closes
// the underlying connection and never delivers another byte. End of stream is not
// authenticated: an attacker who cuts the connection at a frame boundary is seen as io.EOF, so
// the layer above must frame its own orderly close (yamux does).
//
// Deadlines act on the underlying connection. A Read that times out loses nothing and can be
// retried after the deadline is moved. A Write that fails, by timing out or otherwise, may have
// sent part of a frame, so every later Write returns the same error (as in crypto/tls).
type Conn struct {
	conn       net.Conn
	peer       Peer
	binding    []byte
	rekeyBytes uint64

	rmu sync.Mutex
	// The fields below are guarded by rmu.
	fr         *frameReader
	recv       *noise.CipherState
	recvBytes  uint64 // ciphertext received since the last rekey
	recvRekeys int
	plain      []byte // decrypted bytes not yet returned; aliases fr's buffer
	rerr       error  // set once the stream is known to be broken; returned by every later Read

	wmu sync.Mutex
	// The fields below are guarded by wmu.
	send       *noise.CipherState
	sentBytes  uint64 // ciphertext sent since the last rekey
	sendRekeys int
	wbuf       []byte
	werr       error // set by the first failed Write; returned by every later Write
}

var _ net.Conn = (*Conn)(nil)

// newConn wraps c once the handshake has split the transport keys. fr is the handshake's frame
// reader, which may already hold transport frames read ahead.
func newConn(c net.Conn, fr *frameReader, send, recv *noise.CipherState, rekeyBytes uint64) *Conn {
	return &Conn{conn: c, fr: fr, send: send, recv: recv, rekeyBytes: rekeyBytes}
}

// Peer returns the identity the peer proved in the handshake. The returned slices are copies.
func (c *Conn) Peer() Peer {
	return Peer{PublicKey: ed25519.PublicKey(bytes.Clone(c.peer.PublicKey)), Hello: bytes.Clone(c.peer.Hello)}
}

// ChannelBinding returns the Noise handshake hash, a value both ends share and nobody else can
// steer (Noise spec §11.2). Signing it proves that a statement was made on this link and cannot be
// replayed on another.
func (c *Conn) ChannelBinding() []byte {
	return bytes.Clone(c.binding)
}

// Read reads decrypted application data. It returns io.EOF when the peer closed the connection
// between two frames, an error wrapping ErrAuth or ErrMalformed when the stream was tampered with
// or broken (after which the Conn is closed), and other errors of the underlying connection
// unchanged.
func (c *Conn) Read(p []byte) (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if len(p) == 0 {
		return 0, nil
	}
	for len(c.plain) == 0 {
		pt, err := c.readFrameLocked()
		if err != nil {
			return 0, err
		}
		// Empty frames carry nothing; Write never sends them, but they are valid Noise
		// messages, so skip rather than reject them.
		c.plain = pt
	}
	n := copy(p, c.plain)
	c.plain = c.plain[n:]
	return n, nil
}

// readFrameLocked reads, authenticates and decrypts the next frame in place. The plaintext is
// valid until the next call.
func (c *Conn) readFrameLocked() ([]byte, error) {
	if c.rerr != nil {
		return nil, c.rerr
	}
	ct, err := c.fr.next()
	if err != nil {
		if isProtocolError(err) {
			return nil, c.failReadLocked(err)
		}
		// io.EOF, timeouts and closed connections pass through unchanged: callers of a
		// net.Conn compare with io.EOF and ask net.Error.Timeout.
		return nil, err
	}
	if len(ct) < tagSize {
		return nil, c.failReadLocked(fmt.Errorf("%w: frame of %d bytes is shorter than its %d-byte tag",
			ErrMalformed, len(ct), tagSize))
	}
	nonce := c.recv.Nonce()
	pt, err := c.recv.Decrypt(ct[:0], nil, ct)
	if err != nil {
		return nil, c.failReadLocked(fmt.Errorf("%w: frame %d: %w", ErrAuth, nonce, err))
	}
	c.recvBytes += uint64(len(ct))
	if c.recvBytes >= c.rekeyBytes {
		c.recv.Rekey()
		c.recvBytes = 0
		c.recvRekeys++
	}
	return pt, nil
}

// failReadLocked records a fatal read error and closes the connection, so that nothing after
// a bad frame is ever delivered and the writer stops too.
func (c *Conn) failReadLocked(err error) error {
	c.rerr = err
	c.plain = nil
	c.conn.Close()
	return err
}

// Write encrypts p and sends it in frames of at most 65519 bytes of data. It returns how many
// bytes of p were sent in complete frames; a short count comes with an error, after which the
// Conn cannot be written to any more.
func (c *Conn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.werr != nil {
		return 0, c.werr
	}
	n := 0
	for len(p) > 0 {
		chunk := p[:min(len(p), maxPlaintextSize)]
		if err := c.writeFrameLocked(chunk); err != nil {
			return n, err
		}
		n += len(chunk)
		p = p[len(chunk):]
	}
	return n, nil
}

// writeFrameLocked encrypts pt into one frame and sends it with one Write of the underlying
// connection.
func (c *Conn) writeFrameLocked(pt []byte) error {
	need := frameHeaderSize + len(pt) + tagSize
	if cap(c.wbuf) < need {
		c.wbuf = make([]byte, 0, need)
	}
	frame, err := c.send.Encrypt(c.wbuf[:frameHeaderSize], nil, pt)
	if err != nil {
		c.werr = fmt.Errorf("securelink: encrypt frame: %w", err)
		return c.werr
	}
	binary.BigEndian.PutUint16(frame, uint16(len(frame)-frameHeaderSize))
	c.sentBytes += uint64(len(frame) - frameHeaderSize)
	if c.sentBytes >= c.rekeyBytes {
		// Counted exactly as readFrameLocked counts, so both ends rekey after the same frame
		// without signalling (Noise spec §11.3).
		c.send.Rekey()
		c.sentBytes = 0
		c.sendRekeys++
	}
	if _, err := c.conn.Write(frame); err != nil {
		c.werr = err
		return err
	}
	return nil
}

// Close closes the underlying connection. Blocked Reads and Writes return an error. It does not
// send an authenticated close message; see the Conn doc.
func (c *Conn) Close() error { return c.conn.Close() }

// LocalAddr returns the local address of the underlying connection.
func (c *Conn) LocalAddr() net.Addr { return c.conn.LocalAddr() }

// RemoteAddr returns the remote address of the underlying connection.
func (c *Conn) RemoteAddr() net.Addr { return c.conn.RemoteAddr() }

// SetDeadline sets the read and write deadlines of the underlying connection.
func (c *Conn) SetDeadline(t time.Time) error { return c.conn.SetDeadline(t) }

// SetReadDeadline sets the read deadline of the underlying connection.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.conn.SetReadDeadline(t) }

// SetWriteDeadline sets the write deadline of the underlying connection. A Write that hits it
// breaks the Conn for writing; see the Conn doc.
func (c *Conn) SetWriteDeadline(t time.Time) error { return c.conn.SetWriteDeadline(t) }
