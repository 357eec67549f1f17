package site

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
)

// DeployID names a deploy: the SHA-256 of its manifest's canonical JSON (Manifest.Marshal).
// Identical manifests have identical ids on every machine.
type DeployID [sha256.Size]byte

// DeployIDOf returns the id of a manifest given its canonical JSON (as Marshal returns it, or as
// ParseManifest accepted it). It does not check that b is canonical.
func DeployIDOf(b []byte) DeployID { return sha256.Sum256(b) }

// ParseDeployID parses 64 lowercase hex digits, the form String returns. Anything else is
// refused with ErrInvalidDeployID, so that a deploy has exactly one name.
func ParseDeployID(s string) (DeployID, error) {
	var id DeployID
	if len(s) != 2*len(id) {
		return DeployID{}, fmt.Errorf("%w: want %d hex digits, got %d characters", ErrInvalidDeployID, 2*len(id), len(s))
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return DeployID{}, fmt.Errorf("%w: %q at offset %d is not a lowercase hex digit", ErrInvalidDeployID, c, i)
		}
	}
	// Cannot fail: every byte was checked above.
	hex.Decode(id[:], []byte(s))
	return id, nil
}

// String returns the id as 64 lowercase hex digits.
func (id DeployID) String() string { return hex.EncodeToString(id[:]) }

// Short returns the first 12 hex digits, enough to tell deploys apart in logs and messages; it
// is not a name, ParseDeployID does not accept it.
func (id DeployID) Short() string { return hex.EncodeToString(id[:6]) }

// LogValue logs the short form.
func (id DeployID) LogValue() slog.Value { return slog.StringValue(id.Short()) }

// IsZero reports whether id is the zero value, which names no deploy.
func (id DeployID) IsZero() bool { return id == DeployID{} }

// MarshalText encodes the id as 64 lowercase hex digits, for JSON.
func (id DeployID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText parses what MarshalText produces; it is as strict as ParseDeployID.
func (id *DeployID) UnmarshalText(b []byte) error {
	v, err := ParseDeployID(string(b))
	if err != nil {
		return err
	}
	*id = v
	return nil
}

// ID returns the manifest's deploy id: the SHA-256 of Marshal's output. It fails when the
// manifest is invalid.
func (m *Manifest) ID() (DeployID, error) {
	b, err := m.Marshal()
	if err != nil {
		return DeployID{}, err
	}
	return DeployIDOf(b), nil
}

// Marshal validates the manifest and returns its canonical JSON: the encoding/json form with
// every object's keys sorted (as dt.CanonicalJSON sorts them, so the bytes are also a canonical
// dt object), no HTML escaping, no insignificant white space, Created in UTC, and Files written
// as {} when empty. The same manifest gives the same bytes on every machine; they are what a
// master signs and what DeployID hashes.
func (m *Manifest) Marshal() ([]byte, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return m.canonical()
}

func (m *Manifest) canonical() ([]byte, error) {
	c := *m
	c.Created = m.Created.UTC()
	if c.Files == nil {
		c.Files = map[string]File{}
	}
	raw, err := json.Marshal(&c)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidManifest, err)
	}
	return canonicalJSON(raw)
}

// canonicalJSON re-encodes one JSON value with sorted object keys: decoding into `any` and
// encoding again sorts every map's keys (encoding/json sorts map keys); UseNumber keeps numbers
// exactly as written.
func canonicalJSON(raw []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var generic any
	if err := dec.Decode(&generic); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidManifest, err)
	}
	var buf bytes.Buffer
	buf.Grow(len(raw))
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(generic); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidManifest, err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// ParseManifest decodes and validates a manifest from untrusted bytes. It accepts only the
// canonical encoding (what Marshal writes): unknown fields, duplicate keys, keys out of order,
// white space, times not in UTC or any other spelling of the same manifest are refused with
// ErrNotCanonical, so DeployIDOf(b) is the id of the manifest returned. Any rule of Validate it
// breaks is refused with ErrInvalidManifest.
func ParseManifest(b []byte) (*Manifest, error) {
	var m Manifest
	if err := strictUnmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidManifest, err)
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	c, err := m.canonical()
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(c, b) {
		return nil, fmt.Errorf("%w: manifest of %d bytes (canonical form: %d bytes)", ErrNotCanonical, len(b), len(c))
	}
	return &m, nil
}

// strictUnmarshal decodes exactly one JSON value into v, refusing unknown fields and trailing
// data.
func strictUnmarshal(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("data after the JSON value")
	}
	return nil
}
