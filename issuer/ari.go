package issuer

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"
)

// MaxRenewalInfoBytes bounds the ACME directory and renewalInfo answers read from the CA; both
// take under 2 KiB.
const MaxRenewalInfoBytes = 64 << 10

// Errors of renewal information.
var (
	// ErrNoRenewalInfo is returned when the CA's directory offers no renewalInfo resource.
	ErrNoRenewalInfo = errors.New("issuer: the CA offers no renewal information")
	// ErrInvalidRenewalInfo is wrapped by every error of ParseRenewalInfo.
	ErrInvalidRenewalInfo = errors.New("issuer: invalid renewal information")
)

// RenewalWindow is the window in which a CA suggests renewing a certificate (RFC 9773 §4.2).
type RenewalWindow struct {
	Start, End time.Time
	// RetryAfter is when to ask again, from the answer's Retry-After header; zero when absent.
	RetryAfter time.Duration
}

// CertID returns the identifier of a certificate in ACME Renewal Information (RFC 9773 §4.1):
// the base64url (unpadded) keyIdentifier of its Authority Key Identifier extension, a dot, and
// the base64url DER encoding of its serial number's value (without tag and length, so with a
// leading zero byte when the high bit is set).
func CertID(leaf *x509.Certificate) (string, error) {
	if len(leaf.AuthorityKeyId) == 0 {
		return "", errors.New("issuer: certificate has no authority key identifier")
	}
	serial := leaf.SerialNumber.Bytes()
	if len(serial) == 0 || serial[0]&0x80 != 0 {
		serial = append([]byte{0}, serial...)
	}
	enc := base64.RawURLEncoding
	return enc.EncodeToString(leaf.AuthorityKeyId) + "." + enc.EncodeToString(serial), nil
}

// FetchRenewalInfo GETs the renewalInfo resource of leaf from the CA whose directory is at
// directory (RFC 9773 §4.2): an unauthenticated GET of <renewalInfo URL>/<CertID>. x/crypto's
// ACME client does not implement it. It returns ErrNoRenewalInfo when the directory names no
// renewalInfo resource, and an error for a window whose end is not after its start (§4.2:
// such a window is invalid).
func FetchRenewalInfo(ctx context.Context, client *http.Client, directory string, leaf *x509.Certificate) (RenewalWindow, error) {
	var dir struct {
		RenewalInfo string `json:"renewalInfo"`
	}
	if _, err := getJSON(ctx, client, directory, &dir); err != nil {
		return RenewalWindow{}, err
	}
	if dir.RenewalInfo == "" {
		return RenewalWindow{}, ErrNoRenewalInfo
	}
	id, err := CertID(leaf)
	if err != nil {
		return RenewalWindow{}, err
	}
	var raw json.RawMessage
	h, err := getJSON(ctx, client, strings.TrimSuffix(dir.RenewalInfo, "/")+"/"+id, &raw)
	if err != nil {
		return RenewalWindow{}, err
	}
	w, err := ParseRenewalInfo(raw)
	if err != nil {
		return RenewalWindow{}, err
	}
	if s, err := time.ParseDuration(h.Get("Retry-After") + "s"); err == nil && s > 0 {
		w.RetryAfter = s
	}
	return w, nil
}

// ParseRenewalInfo decodes a renewalInfo answer (RFC 9773 §4.2):
//
//	{"suggestedWindow":{"start":"2025-01-02T04:00:00Z","end":"2025-01-03T04:00:00Z"},"explanationURL":"…"}
//
// It refuses an answer over MaxRenewalInfoBytes and a window whose end is not after its start
// (§4.2: such a window is invalid). Other fields are ignored.
func ParseRenewalInfo(b []byte) (RenewalWindow, error) {
	if len(b) > MaxRenewalInfoBytes {
		return RenewalWindow{}, fmt.Errorf("%w: %d bytes, at most %d", ErrInvalidRenewalInfo, len(b), MaxRenewalInfoBytes)
	}
	var info struct {
		SuggestedWindow struct {
			Start time.Time `json:"start"`
			End   time.Time `json:"end"`
		} `json:"suggestedWindow"`
	}
	if err := json.Unmarshal(b, &info); err != nil {
		return RenewalWindow{}, fmt.Errorf("%w: %w", ErrInvalidRenewalInfo, err)
	}
	w := RenewalWindow{Start: info.SuggestedWindow.Start, End: info.SuggestedWindow.End}
	if !w.Start.Before(w.End) {
		return RenewalWindow{}, fmt.Errorf("%w: window %v to %v is empty", ErrInvalidRenewalInfo, w.Start, w.End)
	}
	return w, nil
}

// getJSON GETs url and decodes its JSON body, at most MaxRenewalInfoBytes, into v.
func getJSON(ctx context.Context, client *http.Client, url string, v any) (http.Header, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("issuer: %w", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("issuer: GET %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("issuer: GET %s: %s", url, resp.Status)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, MaxRenewalInfoBytes)).Decode(v); err != nil {
		return nil, fmt.Errorf("issuer: GET %s: %w", url, err)
	}
	return resp.Header, nil
}

// renewAt returns when to renew leaf: a uniformly random time in the CA's renewal window when
// it offers one (RFC 9773 §4.2, so that many clients do not renew at once), else when a third
// of its lifetime is left.
func (m *manager) renewAt(ctx context.Context, leaf *x509.Certificate) time.Time {
	w, err := FetchRenewalInfo(ctx, m.http, m.cfg.Directory, leaf)
	if errors.Is(err, ErrInvalidRenewalInfo) {
		m.metrics.refused.WithLabelValues("renewal_info").Inc()
	}
	if err != nil {
		if !errors.Is(err, ErrNoRenewalInfo) {
			m.log.Warn("Renewal information not read; renewing at two thirds of the lifetime", "name", leaf.DNSNames, "err", err)
		}
		return twoThirds(leaf.NotBefore, leaf.NotAfter)
	}
	return w.Start.Add(rand.N(w.End.Sub(w.Start)))
}

// twoThirds is the time when a third of the validity from notBefore to notAfter is left.
func twoThirds(notBefore, notAfter time.Time) time.Time {
	return notBefore.Add(notAfter.Sub(notBefore) * 2 / 3)
}
