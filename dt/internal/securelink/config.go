package securelink

import (
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/flynn/noise"
	"golang.org/x/crypto/curve25519"
)

// Protocol constants. ONLY CHANGE THEM TOGETHER WITH protocolPrologue: they are part of the wire
// protocol, and peers that disagree on any of them cannot complete a handshake.
const (
	// ProtocolName is the full Noise protocol name (Noise spec §8, §9) used for every link.
	ProtocolName = "Noise_XXpsk3_25519_ChaChaPoly_BLAKE2s"

	// MaxHelloSize is the largest application hello, in bytes, that Config.Hello may hold and
	// that a peer may send.
	MaxHelloSize = 4096

	// DefaultHandshakeTimeout is the handshake deadline used when Config.HandshakeTimeout is zero.
	// It matches the address guard's rule that an unauthenticated connection gets 5 s to prove
	// itself (ipguard's HandshakeTimeout).
	DefaultHandshakeTimeout = 5 * time.Second

	// DefaultRekeyBytes is how much ciphertext one direction carries before both ends rekey it
	// (Noise spec §11.3). Far below ChaCha20-Poly1305's limits; it bounds how much past traffic a
	// key leaked from memory exposes.
	DefaultRekeyBytes = 1 << 30
)

// protocolPrologue starts every Noise prologue (Noise spec §6): it names this package's wire
// protocol and its version, so a peer speaking another version fails the handshake instead of
// misreading it. The NUL separates it from the caller's part.
const protocolPrologue = "dt-securelink/1\x00"

// staticKeyInfo is the HKDF info string that derives the Noise static key from the Ed25519 seed.
const staticKeyInfo = "dt-securelink/1 noise static key"

// Config configures one end of a link. The zero value is not usable: NetworkKey and Identity are
// required. Client and Server do not modify the Config and do not retain it or its slices after
// they return, so one Config may be shared by concurrent handshakes.
type Config struct {
	// NetworkKey is the secret shared by every node of a network: 32 random bytes (dt keygen),
	// never a password. It is the Noise pre-shared key, so a peer with another key fails the
	// handshake. Required; all zeros is rejected as a forgotten setting.
	NetworkKey [32]byte

	// Identity is this node's Ed25519 private key. The node proves it holds it in every
	// handshake, and the link's Noise static key is derived from it, so this key alone recreates
	// the node's identity. Required.
	Identity ed25519.PrivateKey

	// Prologue is appended to the fixed protocol prologue and must be identical on both ends:
	// put the table id and epoch here so that nodes of different tables cannot link. May be
	// empty. It is authenticated, not secret.
	Prologue []byte

	// Hello is an opaque application message sent to the peer inside the handshake, encrypted,
	// and delivered to it as Peer.Hello. At most MaxHelloSize bytes; may be empty. The responder
	// sends its hello only after it has authenticated the initiator.
	Hello []byte

	// HandshakeTimeout bounds the whole handshake. Zero means DefaultHandshakeTimeout. The
	// context passed to Client or Server can only shorten it.
	HandshakeTimeout time.Duration

	// Random is the source of the ephemeral keys. Nil means crypto/rand; tests set a seeded
	// reader for reproducible transcripts. Never use a predictable reader in production: it
	// would void forward secrecy.
	Random io.Reader
}

// endpoint is a validated Config plus what is derived from it. It holds everything one
// handshake needs and is read-only once built.
type endpoint struct {
	networkKey []byte
	prologue   []byte
	timeout    time.Duration
	random     io.Reader
	static     noise.DHKey
	// payload is this end's encoded handshake payload (see payload.go).
	payload []byte
	// rekeyBytes is the per-direction ciphertext count after which a CipherState is rekeyed.
	// Both ends must use the same value; it is not part of Config so that production peers
	// cannot disagree on it. Tests lower it.
	rekeyBytes uint64
}

// newEndpoint validates cfg and derives the static key and handshake payload.
func newEndpoint(cfg Config) (*endpoint, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	static, err := staticKeypair(cfg.Identity)
	if err != nil {
		return nil, fmt.Errorf("%w: derive static key: %w", ErrConfig, err)
	}
	e := &endpoint{
		networkKey: cfg.NetworkKey[:],
		prologue:   append([]byte(protocolPrologue), cfg.Prologue...),
		timeout:    cfg.HandshakeTimeout,
		random:     cfg.Random,
		static:     static,
		payload:    encodePayload(cfg.Identity, static.Public, cfg.Hello),
		rekeyBytes: DefaultRekeyBytes,
	}
	if e.timeout == 0 {
		e.timeout = DefaultHandshakeTimeout
	}
	if e.random == nil {
		e.random = rand.Reader
	}
	return e, nil
}

// validate reports every problem with cfg at once.
func (cfg *Config) validate() error {
	var errs []error
	if cfg.NetworkKey == ([32]byte{}) {
		errs = append(errs, fmt.Errorf("%w: NetworkKey is all zeros", ErrConfig))
	}
	if len(cfg.Identity) != ed25519.PrivateKeySize {
		errs = append(errs, fmt.Errorf("%w: Identity is %d bytes, want an Ed25519 private key of %d",
			ErrConfig, len(cfg.Identity), ed25519.PrivateKeySize))
	}
	if len(cfg.Hello) > MaxHelloSize {
		errs = append(errs, fmt.Errorf("%w: Hello is %d bytes, more than MaxHelloSize (%d)",
			ErrConfig, len(cfg.Hello), MaxHelloSize))
	}
	if cfg.HandshakeTimeout < 0 {
		errs = append(errs, fmt.Errorf("%w: negative HandshakeTimeout %v", ErrConfig, cfg.HandshakeTimeout))
	}
	return errors.Join(errs...)
}

// staticKeypair derives the node's X25519 Noise static key pair from its Ed25519 private key:
// private = HKDF-SHA-256(seed, info=staticKeyInfo), public = X25519(private, 9).
//
// The key is independent of the Ed25519 signing scalar rather than the same scalar mapped to
// Montgomery form, so no scalar is ever used by two algorithms, and the static key a prober sees
// in message 2 cannot be linked to the node's Ed25519 public key; the handshake payload's
// signature is what binds the two (see payload.go).
func staticKeypair(id ed25519.PrivateKey) (noise.DHKey, error) {
	priv, err := hkdf.Key(sha256.New, id.Seed(), nil, staticKeyInfo, curve25519.ScalarSize)
	if err != nil {
		return noise.DHKey{}, err
	}
	pub, err := curve25519.X25519(priv, curve25519.Basepoint)
	if err != nil {
		return noise.DHKey{}, err
	}
	return noise.DHKey{Private: priv, Public: pub}, nil
}
