package securelink

import (
	"crypto/ed25519"
	"fmt"
)

// The handshake payload is what each side tells the other about itself, sent encrypted: by the
// initiator inside Noise message 3, by the responder in the first transport frame (see
// handshake.go for why not in message 2). Version 1:
//
//	offset  size  field
//	0       1     payloadVersion (1)
//	1       32    Ed25519 public key of the sender
//	33      64    Ed25519 signature by that key over bindingContext || sender's Noise static key
//	97      0-4096 application hello (Config.Hello), the rest of the payload
//
// ONLY APPEND NEW VERSIONS: the layout of a version is part of the protocol.
const (
	payloadVersion    = 1
	payloadHeaderSize = 1 + ed25519.PublicKeySize + ed25519.SignatureSize
	maxPayloadSize    = payloadHeaderSize + MaxHelloSize
)

// bindingContext is the domain-separation prefix of the identity signature, so the signature
// cannot be mistaken for an Ed25519 signature the node makes on anything else (records,
// heartbeats), and vice versa.
const bindingContext = "dt-securelink/1 static key binding\x00"

// payload is a decoded handshake payload. Its slices alias the decoded buffer.
type payload struct {
	publicKey ed25519.PublicKey
	signature []byte
	hello     []byte
}

// bindingMessage is the message the identity signature covers.
func bindingMessage(static []byte) []byte {
	return append([]byte(bindingContext), static...)
}

// encodePayload builds this node's payload: it signs static, its Noise static public key, with
// id. The signature is deterministic (RFC 8032 §5.1.6) and names no session; it need not: only the
// holder of static's private key can complete a handshake with it, which Noise's es and se DH
// operations prove (Noise spec §7.7), so a replayed payload is useless to anyone else.
func encodePayload(id ed25519.PrivateKey, static, hello []byte) []byte {
	b := make([]byte, 0, payloadHeaderSize+len(hello))
	b = append(b, payloadVersion)
	b = append(b, id.Public().(ed25519.PublicKey)...)
	b = append(b, ed25519.Sign(id, bindingMessage(static))...)
	return append(b, hello...)
}

// decodePayload parses a payload received from the peer. It checks the layout only; verify
// checks the signature.
func decodePayload(b []byte) (payload, error) {
	if len(b) < payloadHeaderSize {
		return payload{}, fmt.Errorf("%w: handshake payload is %d bytes, want at least %d",
			ErrMalformed, len(b), payloadHeaderSize)
	}
	if b[0] != payloadVersion {
		return payload{}, fmt.Errorf("%w: handshake payload version %d, want %d",
			ErrMalformed, b[0], payloadVersion)
	}
	if len(b) > maxPayloadSize {
		return payload{}, fmt.Errorf("%w: hello is %d bytes, more than MaxHelloSize (%d)",
			ErrMalformed, len(b)-payloadHeaderSize, MaxHelloSize)
	}
	return payload{
		publicKey: ed25519.PublicKey(b[1 : 1+ed25519.PublicKeySize]),
		signature: b[1+ed25519.PublicKeySize : payloadHeaderSize],
		hello:     b[payloadHeaderSize:],
	}, nil
}

// verify checks that the payload's Ed25519 key signed peerStatic, the Noise static key the peer
// authenticated with (HandshakeState.PeerStatic), and returns the peer it describes, with its
// own copies of the bytes.
func (p payload) verify(peerStatic []byte) (Peer, error) {
	if !ed25519.Verify(p.publicKey, bindingMessage(peerStatic), p.signature) {
		return Peer{}, fmt.Errorf("%w: identity signature does not match the peer's static key", ErrAuth)
	}
	return Peer{
		PublicKey: append(ed25519.PublicKey(nil), p.publicKey...),
		Hello:     append([]byte{}, p.hello...),
	}, nil
}
