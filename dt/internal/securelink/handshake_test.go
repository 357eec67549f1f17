package securelink

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"testing/synctest"
	"time"

	"github.com/flynn/noise"
)

func TestProtocolName(t *testing.T) {
	got := "Noise_" + noise.HandshakeXX.Name + "psk3_" + string(cipherSuite().Name())
	if got != ProtocolName {
		t.Fatalf("handshake runs %q, ProtocolName says %q", got, ProtocolName)
	}
}

func TestHandshakeAndData(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			rawC, rawS := tr.pair(t)
			c, s := handshakePair(t.Context(), t, rawC, rawS, testConfig(1), testConfig(2), nil)
			if c.err != nil || s.err != nil {
				t.Fatalf("handshake: client: %v; server: %v", c.err, s.err)
			}
			defer c.conn.Close()
			defer s.conn.Close()

			checkPeer(t, "client sees", c.peer, testConfig(2))
			checkPeer(t, "server sees", s.peer, testConfig(1))
			checkPeer(t, "client Conn.Peer", c.conn.Peer(), testConfig(2))
			if !bytes.Equal(c.conn.ChannelBinding(), s.conn.ChannelBinding()) || len(c.conn.ChannelBinding()) != 32 {
				t.Errorf("channel bindings differ: %x vs %x", c.conn.ChannelBinding(), s.conn.ChannelBinding())
			}
			if c.conn.LocalAddr() != rawC.LocalAddr() || c.conn.RemoteAddr() != rawC.RemoteAddr() {
				t.Errorf("addresses not those of the underlying conn")
			}

			exchange(t, c.conn, s.conn, []byte("ping from the client"))
			exchange(t, s.conn, c.conn, []byte("pong from the server"))
			exchange(t, c.conn, s.conn, []byte("x"))
		})
	}
}

// checkPeer checks that peer describes the node configured by cfg.
func checkPeer(t *testing.T, what string, peer Peer, cfg Config) {
	t.Helper()
	if !bytes.Equal(peer.PublicKey, cfg.Identity.Public().(ed25519.PublicKey)) {
		t.Errorf("%s public key %x, want %x", what, peer.PublicKey, cfg.Identity.Public())
	}
	if !bytes.Equal(peer.Hello, cfg.Hello) {
		t.Errorf("%s hello %q, want %q", what, peer.Hello, cfg.Hello)
	}
}

// exchange writes msg on from and checks that to reads exactly msg.
func exchange(t testing.TB, from, to net.Conn, msg []byte) {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		_, err := from.Write(msg)
		errc <- err
	}()
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(to, got); err != nil {
		t.Fatalf("read: %v", err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("write: %v", err)
	}
	if !bytes.Equal(got, msg) {
		t.Fatalf("read %q, want %q", got, msg)
	}
}

func TestEmptyAndMaximumHello(t *testing.T) {
	for _, size := range []int{0, 1, MaxHelloSize} {
		rawC, rawS := pipePair(t)
		ccfg, scfg := testConfig(1), testConfig(2)
		ccfg.Hello = bytes.Repeat([]byte{'c'}, size)
		scfg.Hello = bytes.Repeat([]byte{'s'}, size)
		c, s := handshakePair(t.Context(), t, rawC, rawS, ccfg, scfg, nil)
		if c.err != nil || s.err != nil {
			t.Fatalf("hello of %d bytes: client: %v; server: %v", size, c.err, s.err)
		}
		checkPeer(t, "client sees", c.peer, scfg)
		checkPeer(t, "server sees", s.peer, ccfg)
		c.conn.Close()
		s.conn.Close()
	}
}

func TestOneByteReads(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			rawC, rawS := tr.pair(t)
			c, s := linkPair(t, oneByteConn{rawC}, oneByteConn{rawS}, nil)
			exchange(t, c, s, bytes.Repeat([]byte("0123456789"), 10000))
			exchange(t, s, c, []byte("reply"))
		})
	}
}

func TestWrongNetworkKey(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			rawC, rawS := tr.pair(t)
			ccfg := testConfig(1)
			ccfg.NetworkKey[0] ^= 1
			c, s := handshakePair(t.Context(), t, rawC, rawS, ccfg, testConfig(2), nil)
			wantErr(t, "server", s.err, ErrAuth)
			// The responder can only close: the initiator sees a lost connection.
			wantErr(t, "client", c.err, ErrHandshake)
			if c.conn != nil || s.conn != nil {
				t.Fatal("a failed handshake returned a Conn")
			}
			// Both ends closed their connection.
			if _, err := rawC.Write([]byte{0}); err == nil {
				t.Error("client's connection still open after a failed handshake")
			}
		})
	}
}

func TestDifferentPrologue(t *testing.T) {
	rawC, rawS := pipePair(t)
	ccfg := testConfig(1)
	ccfg.Prologue = []byte("table-1/epoch-2")
	c, s := handshakePair(t.Context(), t, rawC, rawS, ccfg, testConfig(2), nil)
	wantErr(t, "server", s.err, ErrAuth)
	wantErr(t, "client", c.err, ErrHandshake)
}

func TestIdentitySignatureMismatch(t *testing.T) {
	other := testIdentity(9)
	cases := []struct {
		name string
		// resign builds the payload an end sends instead of its own, given that end's
		// identity and Noise static public key.
		resign func(id ed25519.PrivateKey, static []byte) []byte
	}{
		{"own key, signed by another", func(id ed25519.PrivateKey, static []byte) []byte {
			p := encodePayload(id, static, nil)
			copy(p[1+ed25519.PublicKeySize:], ed25519.Sign(other, bindingMessage(static)))
			return p
		}},
		{"another key over another static key", func(_ ed25519.PrivateKey, _ []byte) []byte {
			otherStatic, err := staticKeypair(other)
			if err != nil {
				panic(err)
			}
			return encodePayload(other, otherStatic.Public, nil)
		}},
		{"signature without domain separation", func(id ed25519.PrivateKey, static []byte) []byte {
			p := encodePayload(id, static, nil)
			copy(p[1+ed25519.PublicKeySize:], ed25519.Sign(id, static))
			return p
		}},
	}
	for _, tc := range cases {
		t.Run("client/"+tc.name, func(t *testing.T) {
			rawC, rawS := pipePair(t)
			c, s := handshakePair(t.Context(), t, rawC, rawS, testConfig(1), testConfig(2), func(ce, _ *endpoint) {
				ce.payload = tc.resign(testIdentity(1), ce.static.Public)
			})
			wantErr(t, "server", s.err, ErrAuth)
			wantErr(t, "client", c.err, ErrHandshake)
		})
		t.Run("server/"+tc.name, func(t *testing.T) {
			rawC, rawS := pipePair(t)
			c, s := handshakePair(t.Context(), t, rawC, rawS, testConfig(1), testConfig(2), func(_, se *endpoint) {
				se.payload = tc.resign(testIdentity(2), se.static.Public)
			})
			wantErr(t, "client", c.err, ErrAuth)
			// The server finishes before the client checks its payload, unless it notices
			// the client hang up while it clears its deadline.
			if s.err != nil {
				wantErr(t, "server", s.err, ErrHandshake)
			} else {
				s.conn.Close()
			}
		})
	}
}

func TestStaticKeyIsDerivedFromIdentity(t *testing.T) {
	a1, err := staticKeypair(testIdentity(1))
	if err != nil {
		t.Fatal(err)
	}
	a2, _ := staticKeypair(testIdentity(1))
	b, _ := staticKeypair(testIdentity(2))
	if !bytes.Equal(a1.Public, a2.Public) || !bytes.Equal(a1.Private, a2.Private) {
		t.Error("static key not reproducible from the identity")
	}
	if bytes.Equal(a1.Public, b.Public) {
		t.Error("two identities share a static key")
	}
	// Every bit of the seed counts.
	seed := testIdentity(1).Seed()
	seed[len(seed)-1] ^= 1
	c, _ := staticKeypair(ed25519.NewKeyFromSeed(seed))
	if bytes.Equal(a1.Public, c.Public) {
		t.Error("identities differing in the last seed byte share a static key")
	}
	// The static key is not the Ed25519 key in another form.
	if bytes.Equal(a1.Public, testIdentity(1).Public().(ed25519.PublicKey)) {
		t.Error("static public key equals the Ed25519 public key")
	}
}

func TestConfigValidation(t *testing.T) {
	cases := map[string]func(*Config){
		"zero network key": func(c *Config) { c.NetworkKey = [32]byte{} },
		"no identity":      func(c *Config) { c.Identity = nil },
		"short identity":   func(c *Config) { c.Identity = c.Identity[:32] },
		"hello too long":   func(c *Config) { c.Hello = make([]byte, MaxHelloSize+1) },
		"negative timeout": func(c *Config) { c.HandshakeTimeout = -time.Second },
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			cfg := testConfig(1)
			mutate(&cfg)
			rawC, rawS := pipePair(t)
			_, _, err := Client(t.Context(), rawC, cfg)
			wantErr(t, "Client", err, ErrConfig)
			_, _, err = Server(t.Context(), rawS, cfg)
			wantErr(t, "Server", err, ErrConfig)
			if _, err := rawC.Write([]byte{0}); !errors.Is(err, io.ErrClosedPipe) {
				t.Errorf("connection not closed after a config error: %v", err)
			}
		})
	}
	// All problems are reported at once.
	err := (&Config{Hello: make([]byte, MaxHelloSize+1)}).validate()
	for _, want := range []string{"NetworkKey", "Identity", "Hello"} {
		if !bytes.Contains([]byte(err.Error()), []byte(want)) {
			t.Errorf("validate error %q does not mention %s", err, want)
		}
	}
}

func TestMalformedHandshake(t *testing.T) {
	valid := func(t *testing.T) []byte {
		msg1, _, _, err := testHandshakeState(t, 1, true).WriteMessage(nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		return msg1
	}
	cases := []struct {
		name string
		send func(t *testing.T) []byte
		want error
	}{
		{"nothing", func(*testing.T) []byte { return nil }, ErrHandshake},
		{"half a header", func(*testing.T) []byte { return []byte{0} }, ErrMalformed},
		{"truncated message 1", func(t *testing.T) []byte { return frameOf(valid(t))[:20] }, ErrMalformed},
		{"message 1 too short", func(t *testing.T) []byte { return frameOf(valid(t)[:msg1Size-1]) }, ErrMalformed},
		{"message 1 too long", func(t *testing.T) []byte { return frameOf(append(valid(t), 0)) }, ErrMalformed},
		{"empty frame", func(*testing.T) []byte { return frameOf(nil) }, ErrMalformed},
		{"garbage of the right size", func(*testing.T) []byte { return frameOf(bytes.Repeat([]byte{7}, msg1Size)) }, ErrAuth},
		{"TLS client hello", func(*testing.T) []byte { return []byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01} }, ErrMalformed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rawC, rawS := pipePair(t)
			data := tc.send(t)
			go func() {
				rawC.Write(data)
				rawC.Close()
			}()
			_, _, err := Server(t.Context(), rawS, testConfig(2))
			wantErr(t, "Server", err, tc.want)
		})
	}
}

// testHandshakeState returns a bare Noise handshake configured like node n, to play one side of
// the protocol by hand.
func testHandshakeState(t *testing.T, n byte, initiator bool) *noise.HandshakeState {
	t.Helper()
	e, err := newEndpoint(testConfig(n))
	if err != nil {
		t.Fatal(err)
	}
	hs, err := e.newHandshakeState(initiator)
	if err != nil {
		t.Fatal(err)
	}
	return hs
}

// frameOf returns body with its length header.
func frameOf(body []byte) []byte {
	return append([]byte{byte(len(body) >> 8), byte(len(body))}, body...)
}

func TestHandshakeTimeout(t *testing.T) {
	t.Run("server, client silent", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			rawC, rawS := net.Pipe()
			defer rawC.Close()
			start := time.Now()
			_, _, err := Server(t.Context(), rawS, testConfig(2))
			wantErr(t, "Server", err, ErrTimeout)
			wantErr(t, "Server", err, os.ErrDeadlineExceeded)
			if d := time.Since(start); d != DefaultHandshakeTimeout {
				t.Errorf("timed out after %v, want %v", d, DefaultHandshakeTimeout)
			}
		})
	})
	t.Run("client, server never reads", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			rawC, rawS := net.Pipe()
			defer rawS.Close()
			cfg := testConfig(1)
			cfg.HandshakeTimeout = 2 * time.Second
			start := time.Now()
			_, _, err := Client(t.Context(), rawC, cfg)
			wantErr(t, "Client", err, ErrTimeout)
			if d := time.Since(start); d != cfg.HandshakeTimeout {
				t.Errorf("timed out after %v, want %v", d, cfg.HandshakeTimeout)
			}
		})
	})
	t.Run("client, server stalls after message 2", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			rawC, rawS := net.Pipe()
			defer rawS.Close()
			hs := testHandshakeState(t, 2, false)
			go func() {
				// Answer message 1 and then read message 3 without ever confirming.
				fr := newFrameReader(rawS)
				msg1, err := fr.next()
				if err != nil {
					return
				}
				hs.ReadMessage(nil, msg1)
				msg2, _, _, _ := hs.WriteMessage(nil, nil)
				writeFrame(rawS, msg2)
				fr.next()
			}()
			_, _, err := Client(t.Context(), rawC, testConfig(1))
			wantErr(t, "Client", err, ErrTimeout)
		})
	})
	t.Run("context deadline first", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			rawC, rawS := net.Pipe()
			defer rawC.Close()
			ctx, cancel := context.WithTimeout(t.Context(), time.Second)
			defer cancel()
			_, _, err := Server(ctx, rawS, testConfig(2))
			wantErr(t, "Server", err, ErrTimeout)
		})
	})
	t.Run("context canceled", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			rawC, rawS := net.Pipe()
			defer rawC.Close()
			ctx, cancel := context.WithCancel(t.Context())
			time.AfterFunc(time.Second, cancel)
			start := time.Now()
			_, _, err := Server(ctx, rawS, testConfig(2))
			wantErr(t, "Server", err, context.Canceled)
			if errors.Is(err, ErrTimeout) {
				t.Errorf("cancellation reported as a timeout: %v", err)
			}
			if d := time.Since(start); d != time.Second {
				t.Errorf("returned after %v, want 1s", d)
			}
		})
	})
}

func TestDeadlinesClearedAfterHandshake(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rawC, rawS := net.Pipe()
		c, s := linkPair(t, rawC, rawS, nil)
		// Far past the handshake deadline, the link still works.
		time.Sleep(10 * DefaultHandshakeTimeout)
		exchange(t, c, s, []byte("still here"))
		exchange(t, s, c, []byte("me too"))
	})
}

func TestMalformedMessage3(t *testing.T) {
	cases := []struct {
		name string
		size int
		want error
	}{
		{"empty", 0, ErrMalformed},
		{"too short", msg3Min - 1, ErrMalformed},
		{"too long", msg3Max + 1, ErrMalformed},
		{"garbage of a valid size", msg3Min, ErrAuth},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rawC, rawS := pipePair(t)
			hs := testHandshakeState(t, 1, true)
			go func() {
				// A real message 1, then tc.size bytes instead of message 3.
				msg1, _, _, _ := hs.WriteMessage(nil, nil)
				writeFrame(rawC, msg1)
				newFrameReader(rawC).next()
				writeFrame(rawC, bytes.Repeat([]byte{0xa5}, tc.size))
			}()
			_, _, err := Server(t.Context(), rawS, testConfig(2))
			wantErr(t, "Server", err, tc.want)
		})
	}
}

func TestMalformedMessage2(t *testing.T) {
	cases := []struct {
		name string
		msg2 []byte
		want error
	}{
		{"too short", make([]byte, msg2Size-1), ErrMalformed},
		{"too long", make([]byte, msg2Size+1), ErrMalformed},
		{"garbage of the right size", bytes.Repeat([]byte{3}, msg2Size), ErrAuth},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rawC, rawS := pipePair(t)
			go func() {
				newFrameReader(rawS).next()
				writeFrame(rawS, tc.msg2)
			}()
			_, _, err := Client(t.Context(), rawC, testConfig(1))
			wantErr(t, "Client", err, tc.want)
		})
	}
}
