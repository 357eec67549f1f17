// Package challenge holds the answers to ACME challenges (RFC 8555 §8) that the issuer writes
// into the dt table so that every node can give them: a DNS-01 answer, the TXT values of
// "_acme-challenge.<domain>", served by every dt DNS node; an HTTP-01 answer, the key
// authorization of a token, served by every edge at "/.well-known/acme-challenge/<token>".
//
// A CA validates from several vantage points, and under GeoDNS each may reach a different
// node, so an answer must be on every node before the CA is told to validate; the table carries
// it there. Records are small and expire: a node ignores an answer past its Expires, and the
// issuer deletes it once the order is done.
//
//	acme/dns-01/<domain>   a DNS01: TXT values for _acme-challenge.<domain>
//	acme/http-01/<token>   an HTTP01: the key authorization for one token and one domain
package challenge

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/dt-cdn/dt/internal/dnsname"
)

// Key prefixes of the records; the issuer's grant covers KeyPrefix.
const (
	KeyPrefix    = "acme/"
	dns01Prefix  = KeyPrefix + "dns-01/"
	http01Prefix = KeyPrefix + "http-01/"
)

// Version is the only value of the records' V this release writes and accepts.
const Version = 1

// Limits of a record. Every node parses records from the network; these bound what one can
// make a node hold.
const (
	// MaxRecordBytes bounds a record's JSON.
	MaxRecordBytes = 4 << 10
	// MaxTXT bounds DNS01.TXT: one value per pending authorization of the domain; an order for
	// "example.com" and "*.example.com" needs two at once, a renewal overlapping it two more.
	MaxTXT = 8
	// MaxValueLen bounds a TXT value and a token: a DNS-01 value is 43 characters (base64url of
	// a SHA-256, RFC 8555 §8.4), and a token at least 22 (128 bits); 255 is one TXT string.
	MaxValueLen = 255
	// MaxKeyAuthorizationLen bounds HTTP01.KeyAuthorization: a token, a dot and a 43-character
	// JWK thumbprint (RFC 8555 §8.1).
	MaxKeyAuthorizationLen = MaxValueLen + 1 + 43
	// MaxDomainLen is the longest domain name in text (RFC 1035 §2.3.4).
	MaxDomainLen = 253
)

// ErrInvalid is wrapped by every error of the package's parsers and constructors.
var ErrInvalid = errors.New("challenge: invalid challenge record")

// DNS01 is the record under DNS01Key(Domain). Its JSON, as Marshal writes it:
//
//	{"v":1,"domain":"cdn.example.com","txt":["<43 base64url>"],"expires":1767225600}
//
// Domain is the identifier without a leading "*.", lower case: an order for "*.example.com"
// and "example.com" validates both through "_acme-challenge.example.com", so both values sit in
// one record. TXT is sorted; Expires is Unix seconds, after which nodes stop answering it.
type DNS01 struct {
	V       int      `json:"v"`
	Domain  string   `json:"domain"`
	TXT     []string `json:"txt"`
	Expires int64    `json:"expires"`
}

// HTTP01 is the record under HTTP01Key(Token). Its JSON, as Marshal writes it:
//
//	{"v":1,"domain":"www.example.com","token":"<token>","key_authorization":"<token>.<thumbprint>","expires":1767225600}
//
// An edge answers GET /.well-known/acme-challenge/<Token> with KeyAuthorization only for a
// request whose Host is Domain.
type HTTP01 struct {
	V                int    `json:"v"`
	Domain           string `json:"domain"`
	Token            string `json:"token"`
	KeyAuthorization string `json:"key_authorization"`
	Expires          int64  `json:"expires"`
}

// DNS01Key returns the key of the DNS-01 record for domain (without "*.").
func DNS01Key(domain string) string { return dns01Prefix + domain }

// HTTP01Key returns the key of the HTTP-01 record for token.
func HTTP01Key(token string) string { return http01Prefix + token }

// ParseDNS01Key returns the domain a DNS-01 record key names, and false for any other key.
func ParseDNS01Key(key string) (string, bool) {
	d, ok := strings.CutPrefix(key, dns01Prefix)
	return d, ok && checkDomain(d) == nil
}

// ParseHTTP01Key returns the token an HTTP-01 record key names, and false for any other key.
func ParseHTTP01Key(key string) (string, bool) {
	t, ok := strings.CutPrefix(key, http01Prefix)
	return t, ok && checkBase64URL("token", t) == nil
}

// DNSName returns the name the TXT record of a DNS-01 challenge for domain is queried at.
func DNSName(domain string) string { return "_acme-challenge." + domain }

// Live reports whether the answer may be given at now.
func (r DNS01) Live(now time.Time) bool { return now.Unix() < r.Expires }

// Live reports whether the answer may be given at now.
func (r HTTP01) Live(now time.Time) bool { return now.Unix() < r.Expires }

// Validate reports the first rule r breaks, as an error wrapping ErrInvalid.
func (r DNS01) Validate() error {
	if r.V != Version {
		return fmt.Errorf("%w: version %d, want %d", ErrInvalid, r.V, Version)
	}
	if err := checkDomain(r.Domain); err != nil {
		return err
	}
	if len(r.TXT) == 0 || len(r.TXT) > MaxTXT {
		return fmt.Errorf("%w: %d TXT values, want 1 to %d", ErrInvalid, len(r.TXT), MaxTXT)
	}
	for i, v := range r.TXT {
		if err := checkBase64URL("TXT value", v); err != nil {
			return err
		}
		if i > 0 && r.TXT[i-1] >= v {
			return fmt.Errorf("%w: TXT values not sorted or repeated", ErrInvalid)
		}
	}
	return checkExpires(r.Expires)
}

// Validate reports the first rule r breaks, as an error wrapping ErrInvalid.
func (r HTTP01) Validate() error {
	if r.V != Version {
		return fmt.Errorf("%w: version %d, want %d", ErrInvalid, r.V, Version)
	}
	if err := checkDomain(r.Domain); err != nil {
		return err
	}
	if strings.HasPrefix(r.Domain, "*.") {
		return fmt.Errorf("%w: HTTP-01 cannot validate the wildcard %s", ErrInvalid, r.Domain)
	}
	if err := checkBase64URL("token", r.Token); err != nil {
		return err
	}
	thumb, ok := strings.CutPrefix(r.KeyAuthorization, r.Token+".")
	if !ok || len(r.KeyAuthorization) > MaxKeyAuthorizationLen || checkBase64URL("thumbprint", thumb) != nil {
		return fmt.Errorf("%w: key authorization is not <token>.<thumbprint>", ErrInvalid)
	}
	return checkExpires(r.Expires)
}

// NewDNS01 returns the record answering with txt for domain until expires, its values sorted.
func NewDNS01(domain string, txt []string, expires time.Time) (DNS01, error) {
	r := DNS01{V: Version, Domain: domain, TXT: slices.Compact(slices.Sorted(slices.Values(txt))), Expires: expires.Unix()}
	return r, r.Validate()
}

// Marshal returns the record's canonical JSON, refusing what Validate refuses.
func (r DNS01) Marshal() ([]byte, error) { return marshal(r, r.Validate) }

// Marshal returns the record's canonical JSON, refusing what Validate refuses.
func (r HTTP01) Marshal() ([]byte, error) { return marshal(r, r.Validate) }

// ParseDNS01At decodes and validates the record read under key from untrusted bytes, refusing
// one whose domain is not the one its key names.
func ParseDNS01At(key string, b []byte) (DNS01, error) {
	var r DNS01
	if err := strictUnmarshal(b, &r); err != nil {
		return DNS01{}, err
	}
	if err := r.Validate(); err != nil {
		return DNS01{}, err
	}
	if key != DNS01Key(r.Domain) {
		return DNS01{}, fmt.Errorf("%w: record for %s under key %.80q", ErrInvalid, r.Domain, key)
	}
	return r, nil
}

// ParseHTTP01At decodes and validates the record read under key from untrusted bytes, refusing
// one whose token is not the one its key names.
func ParseHTTP01At(key string, b []byte) (HTTP01, error) {
	var r HTTP01
	if err := strictUnmarshal(b, &r); err != nil {
		return HTTP01{}, err
	}
	if err := r.Validate(); err != nil {
		return HTTP01{}, err
	}
	if key != HTTP01Key(r.Token) {
		return HTTP01{}, fmt.Errorf("%w: record for token %.40s under key %.80q", ErrInvalid, r.Token, key)
	}
	return r, nil
}

func marshal(v any, validate func() error) ([]byte, error) {
	if err := validate(); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

func strictUnmarshal(b []byte, v any) error {
	if len(b) > MaxRecordBytes {
		return fmt.Errorf("%w: %d bytes, at most %d", ErrInvalid, len(b), MaxRecordBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("%w: data after the JSON object", ErrInvalid)
	}
	return nil
}

// checkDomain accepts a lower-case host name of LDH labels, optionally after "*.", without a
// trailing dot (the form ACME identifiers take, RFC 8555 §7.1.4).
func checkDomain(d string) error {
	name := strings.TrimPrefix(d, "*.")
	if name == "" || len(d) > MaxDomainLen {
		return fmt.Errorf("%w: domain of %d characters, want 1 to %d", ErrInvalid, len(d), MaxDomainLen)
	}
	for l := range strings.SplitSeq(name, ".") {
		if !dnsname.IsLabel(l) {
			return fmt.Errorf("%w: domain %.80q: label %.70q is not 1 to 63 of a-z, 0-9 and '-'", ErrInvalid, d, l)
		}
	}
	return nil
}

// checkBase64URL accepts 1 to MaxValueLen characters of the unpadded base64url alphabet (RFC
// 4648 §5), the alphabet of tokens, thumbprints and DNS-01 values.
func checkBase64URL(what, s string) error {
	if s == "" || len(s) > MaxValueLen {
		return fmt.Errorf("%w: %s of %d characters, want 1 to %d", ErrInvalid, what, len(s), MaxValueLen)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return fmt.Errorf("%w: %s has a character outside base64url", ErrInvalid, what)
		}
	}
	return nil
}

func checkExpires(e int64) error {
	if e <= 0 {
		return fmt.Errorf("%w: no expiry", ErrInvalid)
	}
	return nil
}

// DigestLen is the length of Digest's result in hex digits.
const DigestLen = 16

// Digest names a set of challenge records by their table keys, in any order: the first
// DigestLen hex digits of SHA-256 over the sorted keys, each ended by a newline. A node
// reports the digest of the live records it holds, and the issuer compares it with the digest
// of the records it wrote, to know every node can answer before the CA validates. An empty set
// has the digest of no input.
func Digest(keys []string) string {
	h := sha256.New()
	for _, k := range slices.Sorted(slices.Values(keys)) {
		h.Write([]byte(k))
		h.Write([]byte{'\n'})
	}
	return hex.EncodeToString(h.Sum(nil))[:DigestLen]
}
