package blobs

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
)

// Hash names a blob: the SHA-256 of its bytes (FIPS 180-4).
type Hash [sha256.Size]byte

// Sum returns the hash of b.
func Sum(b []byte) Hash { return sha256.Sum256(b) }

// ParseHash parses 64 lowercase hex digits, the form String returns. Uppercase digits, a prefix
// such as "sha256:", or any other length are rejected with ErrInvalidHash, so that one blob has
// exactly one name (on disk and on the wire).
func ParseHash(s string) (Hash, error) {
	var h Hash
	if len(s) != 2*len(h) {
		return Hash{}, fmt.Errorf("%w: want %d hex digits, got %d characters", ErrInvalidHash, 2*len(h), len(s))
	}
	for i := 0; i < len(s); i++ {
		if !isLowerHex(s[i]) {
			return Hash{}, fmt.Errorf("%w: %q at offset %d is not a lowercase hex digit", ErrInvalidHash, s[i], i)
		}
	}
	// Cannot fail: every byte was checked above.
	hex.Decode(h[:], []byte(s))
	return h, nil
}

func isLowerHex(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' }

// String returns the hash as 64 lowercase hex digits.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// Short returns the first 12 hex digits (48 bits), enough to tell blobs apart in logs and error
// messages; it is not a name, ParseHash does not accept it.
func (h Hash) Short() string { return hex.EncodeToString(h[:6]) }

// LogValue logs the short form.
func (h Hash) LogValue() slog.Value { return slog.StringValue(h.Short()) }

// IsZero reports whether h is the zero value (which is not the hash of any known data).
func (h Hash) IsZero() bool { return h == Hash{} }

// MarshalText encodes the hash as 64 lowercase hex digits, for JSON and YAML.
func (h Hash) MarshalText() ([]byte, error) { return []byte(h.String()), nil }

// UnmarshalText parses what MarshalText produces; it is as strict as ParseHash.
func (h *Hash) UnmarshalText(b []byte) error {
	v, err := ParseHash(string(b))
	if err != nil {
		return err
	}
	*h = v
	return nil
}

// path returns the blob's path relative to the store directory: "ab/cdef…".
func (h Hash) path() (fanout, name string) {
	s := h.String()
	return s[:2], s[2:]
}
