package securelink

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/flynn/noise"
)

// The handshake, Noise pattern XXpsk3 (Noise spec §7.5, §9.4), plus one transport frame:
//
//	-> e                            message 1, initiator
//	<- e, ee, s, es                 message 2, responder
//	-> s, se, psk + payload(I)      message 3, initiator
//	<- transport frame: payload(R)  confirmation, responder
//
// The responder's payload travels in the first transport frame rather than in message 2. Message
// 2 is encrypted only with keys from ee and es, which any active initiator can compute without
// the network key: a prober would learn the responder's identity and hello. The first transport
// frame is keyed with the PSK, the initiator's authentication is already checked when it is
// sent, and receiving it confirms to the initiator that the responder holds the network key;
// without it an initiator with the wrong key would return from Client believing the link is up.
// The cost is half a round trip for the initiator (2 instead of 1.5).
//
// Each message is checked against the exact size version 1 of the protocol produces, before any
// cryptography, so garbage is rejected as ErrMalformed as cheaply as possible.
const (
	dhLen    = 32
	msg1Size = dhLen + tagSize                   // e, empty payload (encrypted: psk mode mixes e into the key)
	msg2Size = dhLen + dhLen + tagSize + tagSize // e, encrypted s, empty payload
	msg3Min  = dhLen + tagSize + payloadHeaderSize + tagSize
	msg3Max  = msg3Min + MaxHelloSize
	pskPlace = 3
)

// cipherSuite returns the primitives named in ProtocolName.
func cipherSuite() noise.CipherSuite {
	return noise.NewCipherSuite(noise.DH25519, noise.CipherChaChaPoly, noise.HashBLAKE2s)
}

// Client runs the initiator side of the handshake on c and returns the established link and the
// authenticated peer. It returns only after the responder has proved that it holds the network
// key, so a returned Conn is fully authenticated in both directions.
//
// The handshake must finish within cfg.HandshakeTimeout and before ctx is done; Client uses c's
// deadlines for this and clears them before it returns. On any error Client closes c. Errors wrap
// ErrConfig, ErrAuth, ErrMalformed, ErrTimeout or ErrHandshake; a cancelled ctx gives an error
// wrapping context.Canceled. When the responder rejects this end's network key or prologue it can
// only close the connection, which Client reports as ErrHandshake.
func Client(ctx context.Context, c net.Conn, cfg Config) (*Conn, Peer, error) {
	return handshake(ctx, c, cfg, true)
}

// Server runs the responder side of the handshake on c, typically a freshly accepted
// connection, and returns the established link and the authenticated peer.
//
// Timeouts, cancellation and closing c on error are as for Client. A wrong network key, a
// different prologue or a bad identity signature from the initiator gives ErrAuth; bytes that
// do not follow the protocol give ErrMalformed; both, and ErrTimeout, are grounds for a strike
// against the remote address. Server reveals nothing about this node (its identity, its hello)
// to an initiator that has not proved it holds the network key; only its Noise static public key,
// which is unlinkable to its Ed25519 identity, is sent before that point.
func Server(ctx context.Context, c net.Conn, cfg Config) (*Conn, Peer, error) {
	return handshake(ctx, c, cfg, false)
}

// handshake validates cfg and runs one side of the handshake on c.
func handshake(ctx context.Context, c net.Conn, cfg Config, initiator bool) (*Conn, Peer, error) {
	e, err := newEndpoint(cfg)
	if err != nil {
		c.Close()
		return nil, Peer{}, err
	}
	return e.handshake(ctx, c, initiator)
}

// handshake bounds the exchange by the timeout and ctx through c's deadlines, runs it and maps
// its failure to the documented errors.
func (e *endpoint) handshake(ctx context.Context, c net.Conn, initiator bool) (*Conn, Peer, error) {
	deadline := time.Now().Add(e.timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if err := c.SetDeadline(deadline); err != nil {
		c.Close()
		return nil, Peer{}, fmt.Errorf("%w: set deadline: %w", ErrHandshake, err)
	}
	// Cancellation interrupts blocked I/O by moving the deadline into the past, as crypto/tls
	// does in HandshakeContext.
	interrupted := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		c.SetDeadline(time.Unix(1, 0))
		close(interrupted)
	})

	var (
		conn *Conn
		peer Peer
		err  error
	)
	if initiator {
		conn, peer, err = e.runClient(c)
	} else {
		conn, peer, err = e.runServer(c)
	}
	if !stop() {
		// The AfterFunc has run or is running: wait, so that clearing the deadline below
		// cannot be undone by it.
		<-interrupted
	}
	if err != nil {
		c.Close()
		if ctxErr := ctx.Err(); ctxErr != nil && errors.Is(err, os.ErrDeadlineExceeded) {
			if errors.Is(ctxErr, context.DeadlineExceeded) {
				return nil, Peer{}, fmt.Errorf("%w: %w", ErrTimeout, ctxErr)
			}
			return nil, Peer{}, fmt.Errorf("securelink: handshake canceled: %w", ctxErr)
		}
		return nil, Peer{}, err
	}
	if err := c.SetDeadline(time.Time{}); err != nil {
		c.Close()
		return nil, Peer{}, fmt.Errorf("%w: clear deadline: %w", ErrHandshake, err)
	}
	return conn, peer, nil
}

// newHandshakeState starts the Noise handshake for one side.
func (e *endpoint) newHandshakeState(initiator bool) (*noise.HandshakeState, error) {
	hs, err := noise.NewHandshakeState(noise.Config{
		CipherSuite:           cipherSuite(),
		Random:                e.random,
		Pattern:               noise.HandshakeXX,
		Initiator:             initiator,
		Prologue:              e.prologue,
		PresharedKey:          e.networkKey,
		PresharedKeyPlacement: pskPlace,
		StaticKeypair:         e.static,
	})
	if err != nil {
		return nil, fmt.Errorf("securelink: start handshake: %w", err)
	}
	return hs, nil
}

// runClient performs the initiator's steps.
func (e *endpoint) runClient(c net.Conn) (*Conn, Peer, error) {
	hs, err := e.newHandshakeState(true)
	if err != nil {
		return nil, Peer{}, err
	}
	fr := newFrameReader(c)

	// -> e
	msg1, _, _, err := hs.WriteMessage(nil, nil)
	if err != nil {
		return nil, Peer{}, fmt.Errorf("securelink: build message 1: %w", err)
	}
	if err := writeFrame(c, msg1); err != nil {
		return nil, Peer{}, ioFailure("write message 1", err)
	}

	// <- e, ee, s, es
	msg2, err := fr.next()
	if err != nil {
		return nil, Peer{}, ioFailure("read message 2", err)
	}
	if len(msg2) != msg2Size {
		return nil, Peer{}, fmt.Errorf("%w: message 2 is %d bytes, want %d", ErrMalformed, len(msg2), msg2Size)
	}
	if _, _, _, err := hs.ReadMessage(nil, msg2); err != nil {
		return nil, Peer{}, fmt.Errorf("%w: message 2: %w", ErrAuth, err)
	}

	// -> s, se, psk + payload
	msg3, send, recv, err := hs.WriteMessage(nil, e.payload)
	if err != nil {
		return nil, Peer{}, fmt.Errorf("securelink: build message 3: %w", err)
	}
	if err := writeFrame(c, msg3); err != nil {
		return nil, Peer{}, ioFailure("write message 3", err)
	}
	// Split (Noise spec §5.2) gives the initiator-to-responder key first.
	conn := newConn(c, fr, send, recv, e.rekeyBytes)

	// <- transport frame with the responder's payload. io.EOF here most likely means the
	// responder rejected the network key or prologue and closed.
	conn.rmu.Lock()
	pt, err := conn.readFrameLocked()
	conn.rmu.Unlock()
	if err != nil {
		return nil, Peer{}, ioFailure("read confirmation", err)
	}
	p, err := decodePayload(pt)
	if err != nil {
		return nil, Peer{}, err
	}
	peer, err := p.verify(hs.PeerStatic())
	if err != nil {
		return nil, Peer{}, err
	}
	conn.peer = peer
	conn.binding = hs.ChannelBinding()
	return conn, conn.Peer(), nil
}

// runServer performs the responder's steps.
func (e *endpoint) runServer(c net.Conn) (*Conn, Peer, error) {
	hs, err := e.newHandshakeState(false)
	if err != nil {
		return nil, Peer{}, err
	}
	fr := newFrameReader(c)

	// <- e
	msg1, err := fr.next()
	if err != nil {
		return nil, Peer{}, ioFailure("read message 1", err)
	}
	if len(msg1) != msg1Size {
		return nil, Peer{}, fmt.Errorf("%w: message 1 is %d bytes, want %d", ErrMalformed, len(msg1), msg1Size)
	}
	if _, _, _, err := hs.ReadMessage(nil, msg1); err != nil {
		// The tag of message 1 covers the prologue (Noise spec §6): another protocol
		// version, table or epoch fails here.
		return nil, Peer{}, fmt.Errorf("%w: message 1 (prologue mismatch?): %w", ErrAuth, err)
	}

	// -> e, ee, s, es
	msg2, _, _, err := hs.WriteMessage(nil, nil)
	if err != nil {
		return nil, Peer{}, fmt.Errorf("securelink: build message 2: %w", err)
	}
	if err := writeFrame(c, msg2); err != nil {
		return nil, Peer{}, ioFailure("write message 2", err)
	}

	// <- s, se, psk + payload
	msg3, err := fr.next()
	if err != nil {
		return nil, Peer{}, ioFailure("read message 3", err)
	}
	if len(msg3) < msg3Min || len(msg3) > msg3Max {
		return nil, Peer{}, fmt.Errorf("%w: message 3 is %d bytes, want %d to %d",
			ErrMalformed, len(msg3), msg3Min, msg3Max)
	}
	pt, recv, send, err := hs.ReadMessage(nil, msg3)
	if err != nil {
		// The payload of message 3 is the first thing encrypted with the PSK mixed in: a
		// wrong network key fails here.
		return nil, Peer{}, fmt.Errorf("%w: message 3 (wrong network key?): %w", ErrAuth, err)
	}
	p, err := decodePayload(pt)
	if err != nil {
		return nil, Peer{}, err
	}
	peer, err := p.verify(hs.PeerStatic())
	if err != nil {
		return nil, Peer{}, err
	}

	// -> transport frame with this end's payload.
	conn := newConn(c, fr, send, recv, e.rekeyBytes)
	conn.peer = peer
	conn.binding = hs.ChannelBinding()
	conn.wmu.Lock()
	err = conn.writeFrameLocked(e.payload)
	conn.wmu.Unlock()
	if err != nil {
		return nil, Peer{}, ioFailure("write confirmation", err)
	}
	return conn, conn.Peer(), nil
}

// ioFailure classifies an error from reading or writing a handshake frame. Protocol errors
// from the frame layer already say what broke and are returned unchanged.
func ioFailure(step string, err error) error {
	switch {
	case isProtocolError(err):
		return err
	case errors.Is(err, os.ErrDeadlineExceeded):
		return fmt.Errorf("%w: %s: %w", ErrTimeout, step, err)
	default:
		return fmt.Errorf("%w: %s: %w", ErrHandshake, step, err)
	}
}

// isProtocolError reports whether err says the peer broke the protocol, as opposed to an I/O
// failure.
func isProtocolError(err error) bool {
	return errors.Is(err, ErrAuth) || errors.Is(err, ErrMalformed)
}
