package heartbeat

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Limits of a heartbeat's certificate report. An edge lists the names it serves soonest to
// expire first, so a name without a valid certificate (or about to lose it) is always listed
// while any is; these bound the report when an edge serves many names, keeping it about 1 KiB
// beside the per-site report.
const (
	// MaxCertNames bounds Certs.Names; the names past it are counted in Certs.More.
	MaxCertNames = 24
	// MaxCertNamesBytes bounds the JSON of Certs.Names's entries: with long names fewer than
	// MaxCertNames fit, and the rest are counted in Certs.More.
	MaxCertNamesBytes = 1 << 10
	// maxCertName is the longest name listed: a DNS name in text (RFC 1035 §2.3.4).
	maxCertName = 253
)

// Certs is an edge's report of the TLS certificates it serves (Heartbeat.Certs).
//
// Names lists the names the edge serves (those of the table's certificates it holds, wildcards
// as "*.<parent>"; its own ACME names; its public URL's host), sorted by expiry then name, the
// names without a valid certificate (Exp 0) first; it holds at most MaxCertNames entries and
// MaxCertNamesBytes, and More counts the names that did not fit, every one of which expires no
// sooner than the last listed. N counts every name, Next is the earliest expiry of a valid one
// (Unix seconds, 0: none), and Digest (DigestLen hex digits, CertsDigest) changes whenever a
// name or its expiry does. ValidFor reads it.
type Certs struct {
	N      int        `json:"n"`
	Next   int64      `json:"next,omitempty"`
	Names  []CertName `json:"names,omitempty"`
	More   int        `json:"more,omitempty"`
	Digest string     `json:"digest"`
}

// CertName is one name an edge serves and when its certificate for it expires.
type CertName struct {
	Name string `json:"name"`
	// Exp is the NotAfter of the valid certificate for Name that expires last, in Unix seconds;
	// 0 when the edge holds none valid (absent, expired, not yet valid, or not opening).
	Exp int64 `json:"exp"`
}

// CertState is a name an edge serves and the certificate it holds for it, to fill a heartbeat
// with SetCerts.
type CertState struct {
	Name     string
	NotAfter time.Time // zero: no valid certificate
}

// SetCerts fills Certs from the state of every name the edge serves (in any order; a name given
// twice counts once, with its later expiry). It leaves CertExpiry to the caller.
func (h *Heartbeat) SetCerts(states []CertState) {
	best := make(map[string]int64, len(states))
	for _, s := range states {
		exp := int64(0)
		if !s.NotAfter.IsZero() {
			exp = s.NotAfter.Unix()
		}
		best[s.Name] = max(best[s.Name], exp)
	}
	names := make([]CertName, 0, len(best))
	for n, exp := range best {
		names = append(names, CertName{Name: n, Exp: exp})
	}
	slices.SortFunc(names, compareCertNames)
	c := &Certs{N: len(names), Digest: CertsDigest(names)}
	size := 0
	for _, n := range names {
		if n.Exp != 0 && (c.Next == 0 || n.Exp < c.Next) {
			c.Next = n.Exp
		}
		sz := len(`{"name":"","exp":},`) + len(n.Name) + 11
		if c.More > 0 || len(c.Names) == MaxCertNames || size+sz > MaxCertNamesBytes {
			c.More++
			continue
		}
		c.Names, size = append(c.Names, n), size+sz
	}
	h.Certs = c
}

// compareCertNames orders by expiry, then name: the order of Certs.Names.
func compareCertNames(a, b CertName) int {
	return cmp.Or(cmp.Compare(a.Exp, b.Exp), strings.Compare(a.Name, b.Name))
}

// CertsDigest returns the first DigestLen hex digits of the SHA-256 of the lines "<name> <exp>\n"
// of every name, sorted by name: two edges holding the same certificates report the same.
func CertsDigest(names []CertName) string {
	names = slices.SortedFunc(slices.Values(names), func(a, b CertName) int { return strings.Compare(a.Name, b.Name) })
	d := sha256.New()
	for _, n := range names {
		fmt.Fprintf(d, "%s %d\n", n.Name, n.Exp)
	}
	return hex.EncodeToString(d.Sum(nil))[:DigestLen]
}

// ValidFor reports whether the edge holds, by this report, a certificate valid at now for host
// (lower case, no trailing dot), and whether the report can tell (false: the edge reports no
// certificates, an earlier release; see CertExpiry).
//
// A name listed, or a listed wildcard of host's parent, gives the answer. A name not listed is
// served only if the list was cut short (More): the names past it expire no sooner than the last
// listed, so it is valid if that one is. A complete list that does not cover host says the edge
// has no certificate for it. Beyond MaxCertNames names the answer for names not listed thus
// assumes the edge serves them; their absence shows only in N and Digest.
func (c *Certs) ValidFor(host string, now time.Time) (valid, known bool) {
	if c == nil {
		return false, false
	}
	t := now.Unix()
	wildcard := ""
	if _, parent, ok := strings.Cut(host, "."); ok && parent != "" {
		wildcard = "*." + parent
	}
	found := false
	for _, n := range c.Names {
		if n.Name == host || n.Name == wildcard {
			found = true
			if t < n.Exp {
				return true, true
			}
		}
	}
	if found || c.More == 0 || len(c.Names) == 0 {
		return false, true
	}
	return t < c.Names[len(c.Names)-1].Exp, true
}

// validate checks the certificate report: counts consistent, at most MaxCertNames entries in
// order without repeats, each a name of printable ASCII, and a digest of DigestLen hex digits.
// Receivers rely on the order (ValidFor's rule for names past the list), so it is checked.
func (c *Certs) validate() error {
	if c == nil {
		return nil
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: certs: "+format, append([]any{ErrInvalid}, args...)...)
	}
	if c.N < 0 || c.More < 0 || len(c.Names)+c.More != c.N || c.Next < 0 {
		return bad("%d names, %d listed, %d more, next %d", c.N, len(c.Names), c.More, c.Next)
	}
	if len(c.Names) > MaxCertNames {
		return bad("%d names listed, at most %d", len(c.Names), MaxCertNames)
	}
	for i, n := range c.Names {
		if !isCertName(n.Name) || n.Exp < 0 || i > 0 && compareCertNames(c.Names[i-1], n) >= 0 {
			return bad("name %d not a name in order", i)
		}
	}
	if len(c.Digest) != DigestLen || !isHex(c.Digest) {
		return bad("digest %q", c.Digest)
	}
	return nil
}

// isCertName accepts 1 to maxCertName bytes of what a DNS name, a wildcard or an IP address in
// a URL host holds: letters, digits, '.', '-', '_', '*' and ':' (IPv6).
func isCertName(s string) bool {
	if s == "" || len(s) > maxCertName {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || strings.IndexByte(".-_*:", c) >= 0) {
			return false
		}
	}
	return true
}
