package netcert

import (
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/dt-cdn/dt/dt"
)

// SealInfo is the HKDF info the sealing key is derived with. It names the purpose, so the
// sealing key is never the key of anything else derived from the network key.
const SealInfo = "dt certificate private key v1"

// ErrSeal is wrapped by errors opening a sealed key: wrong network key, a record's key moved
// to another table key, or bytes altered.
var ErrSeal = errors.New("netcert: sealed key does not open")

// Sealer seals and opens certificates' private keys with the key derived from a network key.
// It is safe for concurrent use.
type Sealer struct {
	aead cipher.AEAD
}

// NewSealer derives the sealing key from the network key.
func NewSealer(network dt.NetworkKey) (*Sealer, error) {
	key, err := hkdf.Key(sha256.New, network[:], nil, SealInfo, chacha20poly1305.KeySize)
	if err != nil {
		return nil, fmt.Errorf("netcert: derive sealing key: %w", err)
	}
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		return nil, fmt.Errorf("netcert: sealing cipher: %w", err)
	}
	return &Sealer{aead: aead}, nil
}

// Seal returns plaintext sealed for the record under tableKey: a random nonce, then the
// ciphertext and tag.
func (s *Sealer) Seal(tableKey string, plaintext []byte) []byte {
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(plaintext)+s.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		panic("netcert: crypto/rand failed: " + err.Error()) // crypto/rand.Read never fails on supported systems
	}
	return s.aead.Seal(nonce, nonce, plaintext, []byte(tableKey))
}

// Open returns what Seal sealed for tableKey, or an error wrapping ErrSeal.
func (s *Sealer) Open(tableKey string, sealed []byte) ([]byte, error) {
	n := s.aead.NonceSize()
	if len(sealed) < n+s.aead.Overhead() {
		return nil, fmt.Errorf("%w: %d bytes, too short", ErrSeal, len(sealed))
	}
	out, err := s.aead.Open(nil, sealed[:n], sealed[n:], []byte(tableKey))
	if err != nil {
		return nil, fmt.Errorf("%w (%s): another network's key, or altered", ErrSeal, tableKey)
	}
	return out, nil
}
