// Package dnsname holds the one rule for the host names dt writes into its records: labels of
// lower-case letters, digits and hyphens (RFC 1123 §2.1), as the CDN zone, ACME identifiers and
// the names under the zone use them.
package dnsname

// MaxLabel is the longest label (RFC 1035 §2.3.4).
const MaxLabel = 63

// IsLabel reports whether l is a lower-case LDH label: 1 to MaxLabel letters, digits and
// hyphens, neither first nor last a hyphen.
func IsLabel(l string) bool {
	if l == "" || len(l) > MaxLabel || l[0] == '-' || l[len(l)-1] == '-' {
		return false
	}
	for i := 0; i < len(l); i++ {
		c := l[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}
