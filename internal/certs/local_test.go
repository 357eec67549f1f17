package certs

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// start is a fixed clock for the local-certificate tests, so expiry arithmetic is exact.
var start = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func clock(t time.Time) func() time.Time { return func() time.Time { return t } }

func newLocal(t *testing.T, dir string, now time.Time) *Manager {
	t.Helper()
	m, err := New(Config{CacheDir: dir, Now: clock(now), Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// servedLeaf returns the certificate the Manager's TLS config hands a client asking for name.
func servedLeaf(t *testing.T, m *Manager, name string) *x509.Certificate {
	t.Helper()
	cert, err := m.TLSConfig().GetCertificate(&tls.ClientHelloInfo{ServerName: name})
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	return leaf
}

func TestLocalCertificate(t *testing.T) {
	dir := t.TempDir()
	m := newLocal(t, dir, start)
	leaf := servedLeaf(t, m, "")

	want := []string{"localhost", "127.0.0.1", "::1"}
	if h, err := os.Hostname(); err == nil && validHostName(strings.ToLower(h)) {
		want = append(want, strings.ToLower(h))
	}
	roots := x509.NewCertPool()
	roots.AddCert(leaf)
	for _, name := range want {
		if _, err := leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: roots, CurrentTime: start}); err != nil {
			t.Errorf("certificate does not verify for %s: %v", name, err)
		}
	}
	if !leaf.NotAfter.Equal(start.Add(365 * 24 * time.Hour)) {
		t.Errorf("NotAfter %v, want a year after %v", leaf.NotAfter, start)
	}
	if leaf.NotBefore.After(start) {
		t.Errorf("NotBefore %v is after creation %v", leaf.NotBefore, start)
	}
	key, ok := leaf.PublicKey.(*ecdsa.PublicKey)
	if !ok || key.Curve != elliptic.P256() {
		t.Errorf("public key %T, want ECDSA P-256", leaf.PublicKey)
	}
	if leaf.IsCA {
		t.Error("local certificate can sign other certificates")
	}
	exp, err := m.Expiry("anything")
	if err != nil || !exp.Equal(leaf.NotAfter) {
		t.Errorf("Expiry = %v, %v; want %v", exp, err, leaf.NotAfter)
	}

	fi, err := os.Stat(filepath.Join(dir, localCertFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want -rw-------", fi.Mode())
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("cache dir holds %d entries, want only %s", len(entries), localCertFile)
	}
}

func TestLocalCertificateReuse(t *testing.T) {
	dir := t.TempDir()
	first := servedLeaf(t, newLocal(t, dir, start), "localhost")
	path := filepath.Join(dir, localCertFile)
	stored, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}

	// A restart 300 days later keeps the certificate: 65 days are left.
	later := servedLeaf(t, newLocal(t, dir, start.Add(300*24*time.Hour)), "localhost")
	if !bytes.Equal(later.Raw, first.Raw) {
		t.Fatal("restart generated a new certificate instead of reusing the stored one")
	}
	if now, _ := os.ReadFile(path); !bytes.Equal(now, stored) {
		t.Error("reuse rewrote the stored file")
	}

	// 340 days later 25 days are left, under the 30-day margin: replaced, and the
	// replacement is what the next start reuses.
	renewedAt := start.Add(340 * 24 * time.Hour)
	renewed := servedLeaf(t, newLocal(t, dir, renewedAt), "localhost")
	if bytes.Equal(renewed.Raw, first.Raw) {
		t.Fatal("certificate 25 days from expiry was kept")
	}
	if !renewed.NotAfter.Equal(renewedAt.Add(localValidity)) {
		t.Errorf("replacement NotAfter %v", renewed.NotAfter)
	}
	again := servedLeaf(t, newLocal(t, dir, renewedAt.Add(time.Hour)), "localhost")
	if !bytes.Equal(again.Raw, renewed.Raw) {
		t.Error("replacement was not stored for the next start")
	}
}

func TestLocalCertificateReplaced(t *testing.T) {
	_, missingNames, err := generateLocal(start, []string{"localhost"})
	if err != nil {
		t.Fatal(err)
	}
	_, fromFuture, err := generateLocal(start.Add(48*time.Hour), localNames())
	if err != nil {
		t.Fatal(err)
	}
	_, valid, err := generateLocal(start, localNames())
	if err != nil {
		t.Fatal(err)
	}
	// Key of one certificate with another's certificate.
	mismatched := append(bytes.Clone(valid[:bytes.Index(valid, []byte("-----BEGIN CERTIFICATE"))]),
		missingNames[bytes.Index(missingNames, []byte("-----BEGIN CERTIFICATE")):]...)
	for name, content := range map[string][]byte{
		"garbage":       []byte("not PEM at all"),
		"empty":         nil,
		"key only":      valid[:bytes.Index(valid, []byte("-----BEGIN CERTIFICATE"))],
		"mismatched":    mismatched,
		"missing names": missingNames,
		"not yet valid": fromFuture,
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, localCertFile)
			if err := os.WriteFile(path, content, 0o600); err != nil {
				t.Fatal(err)
			}
			leaf := servedLeaf(t, newLocal(t, dir, start), "localhost")
			if reason := reuseProblem(leaf, start, localNames()); reason != "" {
				t.Errorf("served certificate: %s", reason)
			}
			stored, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			cert, err := decodeLocal(stored)
			if err != nil {
				t.Fatalf("stored replacement: %v", err)
			}
			if !bytes.Equal(cert.Leaf.Raw, leaf.Raw) {
				t.Error("stored file is not the served certificate")
			}
		})
	}
}

func TestLocalCertificateInMemory(t *testing.T) {
	a := servedLeaf(t, newLocal(t, "", start), "localhost")
	b := servedLeaf(t, newLocal(t, "", start), "localhost")
	if bytes.Equal(a.Raw, b.Raw) {
		t.Error("without a cache dir two Managers share a certificate")
	}
}

func TestLocalCertificateUnreadable(t *testing.T) {
	dir := t.TempDir()
	// A directory where the file should be cannot be read or replaced: New must fail
	// rather than serve something it cannot keep.
	if err := os.Mkdir(filepath.Join(dir, localCertFile), 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Config{CacheDir: dir}); err == nil {
		t.Fatal("New succeeded with an unreadable local certificate")
	}
}

// TestLocalHandshake serves HTTPS with the local certificate on 127.0.0.1 and ::1 and checks
// what a client trusting that certificate sees.
func TestLocalHandshake(t *testing.T) {
	m := newLocal(t, t.TempDir(), time.Now())
	leaf := servedLeaf(t, m, "")
	roots := x509.NewCertPool()
	roots.AddCert(leaf)
	for _, network := range []struct{ listen, name string }{
		{"127.0.0.1:0", "127.0.0.1"}, {"[::1]:0", "::1"}, {"127.0.0.1:0", "localhost"},
	} {
		ln, err := net.Listen("tcp", network.listen)
		if err != nil {
			t.Logf("no %s on this machine: %v", network.listen, err)
			continue
		}
		done := make(chan error, 1)
		go func() {
			c, err := ln.Accept()
			if err != nil {
				done <- err
				return
			}
			defer c.Close()
			done <- tls.Server(c, m.TLSConfig()).Handshake()
		}()
		conn, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{
			ServerName: network.name, RootCAs: roots, NextProtos: []string{"h2", "http/1.1"},
		})
		if err != nil {
			t.Fatalf("dial %s as %s: %v", ln.Addr(), network.name, err)
		}
		state := conn.ConnectionState()
		conn.Close()
		if err := <-done; err != nil {
			t.Errorf("server handshake: %v", err)
		}
		ln.Close()
		if state.NegotiatedProtocol != "h2" {
			t.Errorf("ALPN %q, want h2", state.NegotiatedProtocol)
		}
		if state.Version != tls.VersionTLS13 {
			t.Errorf("TLS version %x, want 1.3", state.Version)
		}
	}
}
