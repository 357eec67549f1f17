package certs

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/mail"
	"net/netip"
	"net/url"
	"strings"
	"time"
)

// Config says which names a Manager serves and where it keeps their certificates. New copies
// it; changing it afterwards has no effect.
type Config struct {
	// Domains are the host names to obtain certificates for, such as "e1.site.example.com".
	// Each must be a fully qualified DNS name in ASCII (IDNs in their xn-- form) with at least
	// two labels, no wildcard, no port and not an IP address; case and a trailing dot are
	// ignored and duplicates are dropped. The node must be reachable under every name on
	// port 80 (http-01) or 443 (tls-alpn-01) for the ACME server to validate it.
	//
	// If empty, the Manager runs in local mode: a self-signed certificate, no ACME.
	Domains []string

	// CacheDir holds the ACME account key, the issued certificates and the local self-signed
	// certificate. It is created with mode 0700 if missing. Required when Domains are set:
	// without a cache every restart asks the CA for new certificates and soon runs into its
	// rate limits. If empty in local mode, the self-signed certificate lives in memory only and
	// changes at every start.
	CacheDir string

	// ACMEDirectory is the URL of the ACME server's directory resource (RFC 8555 §7.1.1). It
	// must be an absolute https URL. If empty, Let's Encrypt's production directory
	// (autocert.DefaultACMEDirectory). Use Let's Encrypt's staging directory while trying a
	// setup out: its rate limits are far higher. Ignored in local mode.
	ACMEDirectory string

	// Email is the contact address registered with the ACME account, used by the CA to warn
	// about expiring or revoked certificates. If empty, the account has no contact. It is
	// only sent when the account is first registered. Ignored in local mode.
	Email string

	// HTTPClient talks to the ACME server. If nil, http.DefaultClient. Tests set it to a
	// client trusting their ACME server's certificate. Ignored in local mode.
	HTTPClient *http.Client

	// Logger receives the certificate events (local certificate generated or reused,
	// certificates obtained by Warm). If nil, nothing is logged.
	Logger *slog.Logger

	// Now is the clock used to date the self-signed certificate and to decide whether a stored
	// one is still good enough to reuse. If nil, time.Now. It does not affect autocert, which
	// uses the real clock for renewal.
	Now func() time.Time
}

// maxDomainLength is the longest name a DNS message can carry in text form (RFC 1035 §2.3.4:
// 255 octets on the wire, so 253 characters without the trailing dot).
const maxDomainLength = 253

// normalized validates cfg and returns the copy a Manager keeps: domains in canonical form,
// defaults filled in. All problems are reported at once.
func (cfg Config) normalized() (Config, error) {
	var errs []error
	out := cfg
	out.Domains = nil
	seen := make(map[string]bool, len(cfg.Domains))
	for _, d := range cfg.Domains {
		name, err := canonicalDomain(d)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !seen[name] {
			seen[name] = true
			out.Domains = append(out.Domains, name)
		}
	}
	if len(cfg.Domains) > 0 && cfg.CacheDir == "" {
		errs = append(errs, fmt.Errorf("%w: a cache directory is required with domains", ErrCacheDir))
	}
	if cfg.ACMEDirectory != "" {
		if err := checkDirectoryURL(cfg.ACMEDirectory); err != nil {
			errs = append(errs, err)
		}
	}
	if cfg.Email != "" {
		if err := checkEmail(cfg.Email); err != nil {
			errs = append(errs, err)
		}
	}
	if out.Logger == nil {
		out.Logger = slog.New(slog.DiscardHandler)
	}
	if out.Now == nil {
		out.Now = time.Now
	}
	return out, errors.Join(errs...)
}

// canonicalDomain lowercases d, drops one trailing dot and checks that an ACME server could
// validate it over http-01 or tls-alpn-01: a DNS host name (RFC 1123 §2.1 letters, digits and
// hyphens) with at least one dot, which autocert requires of every TLS server name.
func canonicalDomain(d string) (string, error) {
	name := strings.TrimSuffix(strings.ToLower(d), ".")
	if _, err := netip.ParseAddr(name); err == nil {
		return "", fmt.Errorf("%w: %q is an IP address", ErrDomain, d)
	}
	if !validHostName(name) {
		return "", fmt.Errorf("%w: %q is not a host name", ErrDomain, d)
	}
	if !strings.Contains(name, ".") {
		return "", fmt.Errorf("%w: %q has a single label", ErrDomain, d)
	}
	return name, nil
}

// validHostName reports whether name, already lowercase and without a trailing dot, is a DNS
// host name: labels of 1 to 63 letters, digits and inner hyphens (RFC 1123 §2.1), 253
// characters at most.
func validHostName(name string) bool {
	if name == "" || len(name) > maxDomainLength {
		return false
	}
	for label := range strings.SplitSeq(name, ".") {
		if !validLabel(label) {
			return false
		}
	}
	return true
}

func validLabel(label string) bool {
	if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
		return false
	}
	for i := range len(label) {
		c := label[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

func checkDirectoryURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrDirectory, err)
	}
	if u.Scheme != "https" || u.Host == "" {
		return fmt.Errorf("%w: %q is not an absolute https URL", ErrDirectory, s)
	}
	return nil
}

// checkEmail accepts a bare address: the ACME account stores it as a "mailto:" URL
// (RFC 8555 §7.3), so display names and angle brackets do not belong in it.
func checkEmail(s string) error {
	a, err := mail.ParseAddress(s)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrEmail, err)
	}
	if a.Address != s || a.Name != "" {
		return fmt.Errorf("%w: %q is not a bare address", ErrEmail, s)
	}
	return nil
}
