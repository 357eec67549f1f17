package securelink

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"github.com/flynn/noise"
)

// scriptConn is a net.Conn that reads a fixed byte string and discards what is written. Its
// deadlines do nothing: with no network behind it nothing can block.
type scriptConn struct {
	r io.Reader
}

func (c scriptConn) Read(p []byte) (int, error)       { return c.r.Read(p) }
func (scriptConn) Write(p []byte) (int, error)        { return len(p), nil }
func (scriptConn) Close() error                       { return nil }
func (scriptConn) LocalAddr() net.Addr                { return &net.TCPAddr{} }
func (scriptConn) RemoteAddr() net.Addr               { return &net.TCPAddr{} }
func (scriptConn) SetDeadline(time.Time) error        { return nil }
func (scriptConn) SetReadDeadline(time.Time) error    { return nil }
func (scriptConn) SetWriteDeadline(t time.Time) error { return nil }

// recordingConn keeps a copy of everything written through it.
type recordingConn struct {
	net.Conn
	mu      sync.Mutex
	written []byte
}

func (c *recordingConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.written = append(c.written, p...)
	c.mu.Unlock()
	return c.Conn.Write(p)
}

// fuzzServerConfig is the server of FuzzServerHandshake. Its randomness is fixed, so a
// recorded initiator transcript stays valid against it.
func fuzzServerConfig() Config {
	cfg := testConfig(2)
	cfg.Random = seededRandom(2)
	return cfg
}

// initiatorTranscript returns the bytes a real initiator sends to the fuzz server in a
// successful handshake, followed by one data frame.
func initiatorTranscript(t testing.TB) []byte {
	rawC, rawS := pipePair(t)
	rec := &recordingConn{Conn: rawC}
	ccfg := testConfig(1)
	ccfg.Random = seededRandom(1)
	c, s := handshakePair(t.Context(), t, rec, rawS, ccfg, fuzzServerConfig(), nil)
	if c.err != nil || s.err != nil {
		t.Fatalf("handshake: client: %v; server: %v", c.err, s.err)
	}
	defer c.conn.Close()
	defer s.conn.Close()
	exchange(t, c.conn, s.conn, []byte("first data"))
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return bytes.Clone(rec.written)
}

func FuzzServerHandshake(f *testing.F) {
	tr := initiatorTranscript(f)
	f.Add(tr)
	f.Add(tr[:frameHeaderSize+msg1Size])
	f.Add(tr[:len(tr)-5])
	f.Add([]byte{})
	f.Add([]byte{0, msg1Size})
	f.Add(frameOf(make([]byte, msg1Size)))
	f.Add([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))

	f.Fuzz(func(t *testing.T, data []byte) {
		conn, peer, err := Server(t.Context(), scriptConn{bytes.NewReader(data)}, fuzzServerConfig())
		if err == nil {
			// Only a genuine initiator can get here.
			if !bytes.Equal(peer.PublicKey, testIdentity(1).Public().(ed25519.PublicKey)) {
				t.Fatalf("handshake accepted an impostor: %x", peer.PublicKey)
			}
			io.Copy(io.Discard, conn)
			return
		}
		if !errors.Is(err, ErrAuth) && !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrHandshake) {
			t.Fatalf("unclassified error: %v", err)
		}
	})
}

func TestFuzzTranscriptIsValid(t *testing.T) {
	tr := initiatorTranscript(t)
	conn, _, err := Server(t.Context(), scriptConn{bytes.NewReader(tr)}, fuzzServerConfig())
	if err != nil {
		t.Fatalf("recorded transcript rejected: %v", err)
	}
	got, err := io.ReadAll(conn)
	if err != nil || string(got) != "first data" {
		t.Fatalf("data after the handshake: %q, %v", got, err)
	}
}

func FuzzFrameReader(f *testing.F) {
	f.Add([]byte{}, false)
	f.Add([]byte{0}, true)
	f.Add([]byte{0, 0}, false)
	f.Add([]byte{0, 3, 'a', 'b', 'c', 0, 1, 'd'}, true)
	f.Add([]byte{0, 3, 'a', 'b', 'c', 0, 1}, false)
	f.Add([]byte{0xff, 0xff, 1, 2, 3}, false)
	f.Add(append(frameOf(bytes.Repeat([]byte{9}, 70000)[:maxFrameSize]), 0, 2, 1, 2), true)

	f.Fuzz(func(t *testing.T, data []byte, oneByte bool) {
		var r io.Reader = bytes.NewReader(data)
		if oneByte {
			r = iotest.OneByteReader(r)
		}
		fr := newFrameReader(r)
		var rebuilt []byte
		for {
			body, err := fr.next()
			if err != nil {
				if !bytes.Equal(rebuilt, data[:len(rebuilt)]) {
					t.Fatal("frames do not reassemble the input")
				}
				rest := data[len(rebuilt):]
				switch {
				case err == io.EOF:
					if len(rest) != 0 {
						t.Fatalf("io.EOF with %d bytes unread", len(rest))
					}
				case errors.Is(err, ErrMalformed) && errors.Is(err, io.ErrUnexpectedEOF):
					if len(rest) == 0 || (len(rest) >= 2 && len(rest) >= 2+int(binary.BigEndian.Uint16(rest))) {
						t.Fatalf("truncation reported with a complete frame of %d bytes left", len(rest))
					}
				default:
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			rebuilt = append(rebuilt, frameOf(body)...)
		}
	})
}

// fuzzKey is the transport key of FuzzConnRead.
var fuzzKey = [32]byte{1, 2, 3, 4, 5, 6, 7, 8, 9}

// sealedStream returns frames encrypting msgs with fuzzKey.
func sealedStream(msgs ...string) []byte {
	cs := noise.UnsafeNewCipherState(cipherSuite(), fuzzKey, 0)
	var out []byte
	for _, m := range msgs {
		ct, err := cs.Encrypt(nil, nil, []byte(m))
		if err != nil {
			panic(err)
		}
		out = append(out, frameOf(ct)...)
	}
	return out
}

// FuzzConnRead feeds random streams to an established Conn's reader.
func FuzzConnRead(f *testing.F) {
	f.Add(sealedStream("hello", "", "world"))
	f.Add(sealedStream("hello")[:10])
	f.Add(append(sealedStream("a"), 0, 5, 1, 2, 3, 4, 5))
	f.Add([]byte{0, 16})

	f.Fuzz(func(t *testing.T, data []byte) {
		recv := noise.UnsafeNewCipherState(cipherSuite(), fuzzKey, 0)
		send := noise.UnsafeNewCipherState(cipherSuite(), fuzzKey, 0)
		raw := scriptConn{bytes.NewReader(data)}
		c := newConn(raw, newFrameReader(raw), send, recv, 64)
		_, err := io.Copy(io.Discard, c)
		if err != nil && !errors.Is(err, ErrAuth) && !errors.Is(err, ErrMalformed) {
			t.Fatalf("unclassified error: %v", err)
		}
		if err != nil {
			if _, again := c.Read(make([]byte, 1)); again != err {
				t.Fatalf("error not final: %v then %v", err, again)
			}
		}
	})
}

func FuzzHelloPayload(f *testing.F) {
	static, err := staticKeypair(testIdentity(1))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(encodePayload(testIdentity(1), static.Public, []byte("hello")), static.Public)
	f.Add(encodePayload(testIdentity(1), static.Public, nil), static.Public)
	f.Add(encodePayload(testIdentity(1), static.Public, make([]byte, MaxHelloSize+1)), static.Public)
	f.Add([]byte{payloadVersion}, []byte{})
	f.Add([]byte{2, 0, 0}, static.Public)

	f.Fuzz(func(t *testing.T, data, peerStatic []byte) {
		p, err := decodePayload(data)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("unclassified error: %v", err)
			}
			if len(data) >= payloadHeaderSize && len(data) <= maxPayloadSize && data[0] == payloadVersion {
				t.Fatalf("valid layout rejected: %v", err)
			}
		} else {
			if !bytes.Equal(p.publicKey, data[1:33]) || !bytes.Equal(p.hello, data[payloadHeaderSize:]) {
				t.Fatal("fields decoded from the wrong offsets")
			}
			peer, err := p.verify(peerStatic)
			if err != nil && !errors.Is(err, ErrAuth) {
				t.Fatalf("unclassified error: %v", err)
			}
			if err == nil {
				mutated := bytes.Clone(data)
				for i := range data {
					data[i] ^= 0xff
				}
				if !bytes.Equal(peer.PublicKey, mutated[1:33]) || !bytes.Equal(peer.Hello, mutated[payloadHeaderSize:]) {
					t.Fatal("Peer aliases the received buffer")
				}
			}
		}

		// Round trip: any hello this node may send decodes and verifies against its key.
		hello := data[:min(len(data), MaxHelloSize)]
		p, err = decodePayload(encodePayload(testIdentity(1), static.Public, hello))
		if err != nil {
			t.Fatal(err)
		}
		peer, err := p.verify(static.Public)
		if err != nil || !bytes.Equal(peer.Hello, hello) {
			t.Fatalf("round trip: %q, %v", peer.Hello, err)
		}
		if len(peerStatic) > 0 && !bytes.Equal(peerStatic, static.Public) {
			if _, err := p.verify(peerStatic); !errors.Is(err, ErrAuth) {
				t.Fatalf("payload verified against another static key: %v", err)
			}
		}
	})
}
