package netcert

import (
	"bytes"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// KeyPrefix is the prefix of every certificate record's key; the issuer's grant covers it.
const KeyPrefix = "certs/"

// Version is the only value of Record.V this release writes and accepts.
const Version = 1

// Limits of a record, which every node parses from the network.
const (
	// MaxRecordBytes bounds a record's JSON: a chain of MaxChain certificates of a few KiB each,
	// base64-encoded, and a sealed key.
	MaxRecordBytes = 64 << 10
	// MaxChain bounds Record.Chain: a leaf and its intermediates (Let's Encrypt sends one or two).
	MaxChain = 4
	// MaxNames bounds Record.Names: Let's Encrypt issues up to 100 names per certificate.
	MaxNames = 100
)

// ErrInvalid is wrapped by every error of ParseAt, NewRecord and Marshal.
var ErrInvalid = errors.New("netcert: invalid certificate record")

// Record is the object under Key(Names[0]). Its JSON, as Marshal writes it:
//
//	{"v":1,"names":["*.cdn.example.com","cdn.example.com"],"chain":["<base64 DER>",…],
//	 "key":"<base64 sealed PKCS #8>","not_before":1767225600,"not_after":1775001600,
//	 "issuer":"<issuer CN>","renew_after":1771000000}
//
// Names are the leaf's DNS names, sorted (so a wildcard comes before its apex); Chain is the
// leaf first, then intermediates; Key is the private key in PKCS #8, sealed by a Sealer for
// the record's table key; times are Unix seconds. RenewAfter, when not zero, is when the issuer
// plans to renew (the start of the CA's ACME Renewal Information window, or two thirds of the
// lifetime), for dashboards and for a successor issuer.
type Record struct {
	V          int      `json:"v"`
	Names      []string `json:"names"`
	Chain      [][]byte `json:"chain"`
	Key        []byte   `json:"key"`
	NotBefore  int64    `json:"not_before"`
	NotAfter   int64    `json:"not_after"`
	Issuer     string   `json:"issuer"`
	RenewAfter int64    `json:"renew_after,omitempty"`
}

// Key returns the table key of the record of a certificate whose first name is name.
func Key(name string) string { return KeyPrefix + name }

// TableKey returns the table key r belongs under.
func (r Record) TableKey() string { return Key(r.Names[0]) }

// NewRecord returns the record of the certificate chain (DER, leaf first) and its private key,
// the key sealed by s. It refuses a chain whose leaf does not parse, has no DNS names or does
// not match key.
func NewRecord(chain [][]byte, key crypto.Signer, s *Sealer, renewAfter time.Time) (Record, error) {
	if len(chain) == 0 {
		return Record{}, fmt.Errorf("%w: empty chain", ErrInvalid)
	}
	leaf, err := x509.ParseCertificate(chain[0])
	if err != nil {
		return Record{}, fmt.Errorf("%w: leaf: %w", ErrInvalid, err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return Record{}, fmt.Errorf("netcert: encode private key: %w", err)
	}
	r := Record{V: Version, Names: slices.Sorted(slices.Values(leaf.DNSNames)), Chain: chain,
		NotBefore: leaf.NotBefore.Unix(), NotAfter: leaf.NotAfter.Unix(), Issuer: leaf.Issuer.CommonName}
	if !renewAfter.IsZero() {
		r.RenewAfter = renewAfter.Unix()
	}
	if _, err := r.leaf(); err != nil {
		return Record{}, err
	}
	r.Key = s.Seal(r.TableKey(), der)
	if _, err := r.Open(s); err != nil {
		return Record{}, err
	}
	return r, nil
}

// Marshal returns the record's JSON, refusing a record that ParseAt would refuse.
func (r Record) Marshal() ([]byte, error) {
	if _, err := r.leaf(); err != nil {
		return nil, err
	}
	if len(r.Key) == 0 {
		return nil, fmt.Errorf("%w: no sealed key", ErrInvalid)
	}
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(r); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if buf.Len() > MaxRecordBytes {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", ErrInvalid, buf.Len(), MaxRecordBytes)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// ParseAt decodes and checks the record read under tableKey from untrusted bytes: its size,
// version, names (those of its leaf, sorted, the first naming tableKey), chain length, and
// times (those of its leaf). The sealed key is opened only by Open.
func ParseAt(tableKey string, b []byte) (Record, error) {
	if len(b) > MaxRecordBytes {
		return Record{}, fmt.Errorf("%w: %d bytes, at most %d", ErrInvalid, len(b), MaxRecordBytes)
	}
	var r Record
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return Record{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Record{}, fmt.Errorf("%w: data after the JSON object", ErrInvalid)
	}
	if _, err := r.leaf(); err != nil {
		return Record{}, err
	}
	if len(r.Key) == 0 {
		return Record{}, fmt.Errorf("%w: no sealed key", ErrInvalid)
	}
	if tableKey != r.TableKey() {
		return Record{}, fmt.Errorf("%w: certificate for %s under key %.80q", ErrInvalid, r.Names[0], tableKey)
	}
	return r, nil
}

// leaf checks everything but the sealed key and returns the parsed leaf.
func (r Record) leaf() (*x509.Certificate, error) {
	switch {
	case r.V != Version:
		return nil, fmt.Errorf("%w: version %d, want %d", ErrInvalid, r.V, Version)
	case len(r.Chain) == 0 || len(r.Chain) > MaxChain:
		return nil, fmt.Errorf("%w: chain of %d certificates, want 1 to %d", ErrInvalid, len(r.Chain), MaxChain)
	case len(r.Names) == 0 || len(r.Names) > MaxNames:
		return nil, fmt.Errorf("%w: %d names, want 1 to %d", ErrInvalid, len(r.Names), MaxNames)
	case !slices.IsSorted(r.Names):
		return nil, fmt.Errorf("%w: names not sorted", ErrInvalid)
	}
	leaf, err := x509.ParseCertificate(r.Chain[0])
	if err != nil {
		return nil, fmt.Errorf("%w: leaf: %w", ErrInvalid, err)
	}
	if !slices.Equal(r.Names, slices.Sorted(slices.Values(leaf.DNSNames))) {
		return nil, fmt.Errorf("%w: names %s are not the leaf's %s", ErrInvalid,
			strings.Join(r.Names, ","), strings.Join(leaf.DNSNames, ","))
	}
	if r.NotBefore != leaf.NotBefore.Unix() || r.NotAfter != leaf.NotAfter.Unix() {
		return nil, fmt.Errorf("%w: validity is not the leaf's", ErrInvalid)
	}
	for _, name := range r.Names {
		if len(name) > 253 || strings.Contains(name, "/") || name == "" {
			return nil, fmt.Errorf("%w: name %.80q", ErrInvalid, name)
		}
	}
	return leaf, nil
}

// Open returns the certificate ready to serve: the chain, the private key opened by s, and the
// parsed leaf. It refuses a key that does not open for the record's table key, or that does not
// match the leaf.
func (r Record) Open(s *Sealer) (*tls.Certificate, error) {
	leaf, err := r.leaf()
	if err != nil {
		return nil, err
	}
	der, err := s.Open(r.TableKey(), r.Key)
	if err != nil {
		return nil, err
	}
	key, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("%w: private key: %w", ErrInvalid, err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%w: private key of type %T cannot sign", ErrInvalid, key)
	}
	type equaler interface{ Equal(crypto.PublicKey) bool }
	if pub, ok := signer.Public().(equaler); !ok || !pub.Equal(leaf.PublicKey) {
		return nil, fmt.Errorf("%w: private key does not match the certificate of %s", ErrInvalid, r.Names[0])
	}
	return &tls.Certificate{Certificate: r.Chain, PrivateKey: signer, Leaf: leaf}, nil
}

// Covers reports whether the certificate's names cover host (lower case, no trailing dot):
// a name equal to it, or a "*." name for its parent (RFC 6125 §6.4.3: one label).
func (r Record) Covers(host string) bool {
	for _, n := range r.Names {
		if n == host {
			return true
		}
		if rest, ok := strings.CutPrefix(n, "*."); ok {
			if _, parent, found := strings.Cut(host, "."); found && parent == rest {
				return true
			}
		}
	}
	return false
}
