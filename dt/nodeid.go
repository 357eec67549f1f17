package dt

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
)

// NodeID names a node: the first 16 bytes of SHA-256 of its Ed25519 identity key. It is the same
// across restarts as long as the data directory (which holds the identity) is kept.
type NodeID [16]byte

// NodeIDOf derives the id of the node holding pub.
func NodeIDOf(pub ed25519.PublicKey) NodeID {
	sum := sha256.Sum256(pub)
	var id NodeID
	copy(id[:], sum[:])
	return id
}

// String returns the id as 32 lowercase hex digits.
func (id NodeID) String() string { return hex.EncodeToString(id[:]) }

// Short returns the first 8 hex digits, enough to tell nodes apart in logs.
func (id NodeID) Short() string { return hex.EncodeToString(id[:4]) }

// LogValue logs the short form.
func (id NodeID) LogValue() slog.Value { return slog.StringValue(id.Short()) }

// MarshalText encodes the id as hex, for JSON status output.
func (id NodeID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText parses 32 hex digits.
func (id *NodeID) UnmarshalText(b []byte) error {
	if len(b) != 2*len(id) {
		return fmt.Errorf("dt: node id: want %d hex digits", 2*len(id))
	}
	_, err := hex.Decode(id[:], b)
	if err != nil {
		return fmt.Errorf("dt: node id: %w", err)
	}
	return nil
}
