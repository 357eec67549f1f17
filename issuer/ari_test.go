package issuer

import (
	"crypto/x509"
	"errors"
	"math/big"
	"testing"
	"time"
)

// TestCertID checks the example of RFC 9773 §4.1.
func TestCertID(t *testing.T) {
	leaf := &x509.Certificate{
		AuthorityKeyId: []byte{0x69, 0x88, 0x5B, 0x6B, 0x87, 0x46, 0x40, 0x41, 0xE1, 0xB3, 0x7B, 0x84, 0x7B, 0xA0, 0xAE, 0x2C, 0xDE, 0x01, 0xC8, 0xD4},
		SerialNumber:   big.NewInt(0x87654321),
	}
	id, err := CertID(leaf)
	if want := "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE"; err != nil || id != want {
		t.Errorf("CertID = %q, %v; want %q", id, err, want)
	}
	if _, err := CertID(&x509.Certificate{SerialNumber: big.NewInt(1)}); err == nil {
		t.Error("CertID of a certificate without an authority key identifier succeeded")
	}
}

func TestParseRenewalInfo(t *testing.T) {
	w, err := ParseRenewalInfo([]byte(`{"suggestedWindow":{"start":"2025-01-02T04:00:00Z","end":"2025-01-03T04:00:00Z"},"explanationURL":"https://x"}`))
	if err != nil || !w.Start.Equal(time.Date(2025, 1, 2, 4, 0, 0, 0, time.UTC)) || w.End.Sub(w.Start) != 24*time.Hour {
		t.Fatalf("ParseRenewalInfo = %+v, %v", w, err)
	}
	for name, in := range map[string]string{"not json": "{", "no window": `{}`,
		"reversed": `{"suggestedWindow":{"start":"2025-01-03T04:00:00Z","end":"2025-01-02T04:00:00Z"}}`,
		"empty":    `{"suggestedWindow":{"start":"2025-01-03T04:00:00Z","end":"2025-01-03T04:00:00Z"}}`} {
		if _, err := ParseRenewalInfo([]byte(in)); !errors.Is(err, ErrInvalidRenewalInfo) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := ParseRenewalInfo(make([]byte, MaxRenewalInfoBytes+1)); !errors.Is(err, ErrInvalidRenewalInfo) {
		t.Errorf("over the limit: %v", err)
	}
}

func FuzzParseRenewalInfo(f *testing.F) {
	f.Add([]byte(`{"suggestedWindow":{"start":"2025-01-02T04:00:00Z","end":"2025-01-03T04:00:00Z"}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		w, err := ParseRenewalInfo(b)
		if err == nil && !w.Start.Before(w.End) {
			t.Fatalf("accepted an empty window %+v", w)
		}
	})
}

func TestParseAccount(t *testing.T) {
	good := `{"v":1,"directory":"https://ca/dir","uri":"https://ca/acct/1","key":"AAAA"}`
	if r, err := ParseAccount([]byte(good)); err != nil || r.URI != "https://ca/acct/1" || len(r.Key) != 3 {
		t.Fatalf("ParseAccount = %+v, %v", r, err)
	}
	for name, in := range map[string]string{"not json": "{", "trailing": good + "{}", "version": `{"v":2,"directory":"d","uri":"u","key":"AAAA"}`,
		"no key": `{"v":1,"directory":"d","uri":"u"}`, "no uri": `{"v":1,"directory":"d","key":"AAAA"}`} {
		if _, err := ParseAccount([]byte(in)); !errors.Is(err, ErrInvalidAccount) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := ParseAccount(make([]byte, MaxAccountBytes+1)); !errors.Is(err, ErrInvalidAccount) {
		t.Errorf("over the limit: %v", err)
	}
}

func FuzzParseAccount(f *testing.F) {
	f.Add([]byte(`{"v":1,"directory":"https://ca/dir","uri":"https://ca/acct/1","key":"AAAA"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseAccount(b)
		if err == nil && (r.V != 1 || r.Directory == "" || r.URI == "" || len(r.Key) == 0) {
			t.Fatalf("accepted %+v", r)
		}
	})
}
