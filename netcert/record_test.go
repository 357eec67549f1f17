package netcert

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"testing"
	"time"

	"github.com/dt-cdn/dt/dt"
)

// issue makes a self-signed certificate for names, as a CA would issue one.
func issue(t testing.TB, names ...string) ([][]byte, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: names[0]},
		Issuer: pkix.Name{CommonName: "test CA"}, DNSNames: names,
		NotBefore: time.Unix(1767225600, 0), NotAfter: time.Unix(1767225600+90*86400, 0)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return [][]byte{der}, key
}

func sealer(t testing.TB, b byte) *Sealer {
	t.Helper()
	var k dt.NetworkKey
	k[0] = b
	s, err := NewSealer(k)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestRecordRoundTrip(t *testing.T) {
	chain, key := issue(t, "cdn.example.com", "*.cdn.example.com")
	s := sealer(t, 1)
	r, err := NewRecord(chain, key, s, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if r.TableKey() != "certs/*.cdn.example.com" {
		t.Errorf("TableKey = %s", r.TableKey())
	}
	b, err := r.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	if bytes.Contains(b, der) || bytes.Contains(b, []byte("PRIVATE KEY")) {
		t.Fatal("the record holds the private key in the clear")
	}
	got, err := ParseAt(r.TableKey(), b)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := got.Open(s)
	if err != nil {
		t.Fatal(err)
	}
	if !key.Equal(cert.PrivateKey) || cert.Leaf.Subject.CommonName != "cdn.example.com" {
		t.Error("opened certificate differs from the issued one")
	}
	for host, want := range map[string]bool{"cdn.example.com": true, "blog--ams.cdn.example.com": true,
		"a.b.cdn.example.com": false, "example.com": false, "xcdn.example.com": false} {
		if got.Covers(host) != want {
			t.Errorf("Covers(%s) = %v, want %v", host, !want, want)
		}
	}
}

func TestSealedKeyDoesNotOpenElsewhere(t *testing.T) {
	chain, key := issue(t, "www.example.com")
	r, err := NewRecord(chain, key, sealer(t, 1), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Open(sealer(t, 2)); !errors.Is(err, ErrSeal) {
		t.Errorf("open with another network's key: %v, want ErrSeal", err)
	}
	// The same sealed key under another certificate's record must not open either.
	chain2, _ := issue(t, "other.example.com")
	moved := r
	moved.Chain, moved.Names = chain2, []string{"other.example.com"}
	if _, err := moved.Open(sealer(t, 1)); !errors.Is(err, ErrSeal) {
		t.Errorf("sealed key moved to another record: %v, want ErrSeal", err)
	}
	r.Key[len(r.Key)-1] ^= 1
	if _, err := r.Open(sealer(t, 1)); !errors.Is(err, ErrSeal) {
		t.Errorf("altered sealed key: %v, want ErrSeal", err)
	}
}

func TestParseAtRefuses(t *testing.T) {
	chain, key := issue(t, "www.example.com")
	r, _ := NewRecord(chain, key, sealer(t, 1), time.Time{})
	good, _ := r.Marshal()
	if _, err := ParseAt("certs/other.example.com", good); !errors.Is(err, ErrInvalid) {
		t.Errorf("under another name's key: %v", err)
	}
	bad := r
	bad.Names = []string{"evil.example.com"}
	if _, err := bad.Marshal(); !errors.Is(err, ErrInvalid) {
		t.Errorf("names not the leaf's: %v", err)
	}
	bad = r
	bad.NotAfter++
	if _, err := bad.Marshal(); !errors.Is(err, ErrInvalid) {
		t.Errorf("validity not the leaf's: %v", err)
	}
	for name, in := range map[string]string{"not json": "{", "trailing": string(good) + "{}",
		"unknown": `{"v":1,"x":1}`, "empty": `{}`} {
		if _, err := ParseAt(r.TableKey(), []byte(in)); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func FuzzParseAt(f *testing.F) {
	chain, key := issue(f, "www.example.com")
	s := sealer(f, 1)
	r, _ := NewRecord(chain, key, s, time.Time{})
	good, _ := r.Marshal()
	f.Add("certs/www.example.com", good)
	f.Add("certs/x", []byte(`{"v":1,"names":["x"],"chain":["AAAA"],"key":"AAAA"}`))
	f.Fuzz(func(t *testing.T, k string, b []byte) {
		r, err := ParseAt(k, b)
		if err != nil {
			return
		}
		out, err := r.Marshal()
		if err != nil {
			t.Fatalf("accepted record does not marshal: %v", err)
		}
		if _, err := ParseAt(k, out); err != nil {
			t.Fatalf("re-parse: %v", err)
		}
		_, _ = r.Open(s) // must not panic whatever the sealed bytes
	})
}
