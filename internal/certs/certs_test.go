package certs

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/acme"
)

func TestTLSConfig(t *testing.T) {
	acmeMode := newACME(t, t.TempDir(), "e1.example.test").TLSConfig()
	if want := []string{"h2", "http/1.1", acme.ALPNProto}; !slices.Equal(acmeMode.NextProtos, want) {
		t.Errorf("ACME mode NextProtos %v, want %v", acmeMode.NextProtos, want)
	}
	local := newLocal(t, t.TempDir(), start)
	localMode := local.TLSConfig()
	if want := []string{"h2", "http/1.1"}; !slices.Equal(localMode.NextProtos, want) {
		t.Errorf("local mode NextProtos %v, want %v", localMode.NextProtos, want)
	}
	for _, c := range []*tls.Config{acmeMode, localMode} {
		if c.MinVersion != tls.VersionTLS12 || c.GetCertificate == nil {
			t.Errorf("MinVersion %x, GetCertificate set %v", c.MinVersion, c.GetCertificate != nil)
		}
	}
	localMode.NextProtos[0] = "changed"
	if local.TLSConfig().NextProtos[0] != "h2" {
		t.Error("TLSConfig results share state")
	}
}

// TestTLSRefusesOldVersions connects with TLS 1.1 at most: the handshake must fail.
func TestTLSRefusesOldVersions(t *testing.T) {
	m := newLocal(t, t.TempDir(), time.Now())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
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
		InsecureSkipVerify: true, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11,
	})
	if err == nil {
		conn.Close()
		t.Fatal("TLS 1.1 handshake succeeded")
	}
	if err := <-done; err == nil {
		t.Fatal("server accepted TLS 1.1")
	}
}

// TestGetCertificateHostPolicy asks for names outside Domains: they are refused before any
// ACME traffic (the directory is unreachable, so an attempt would fail differently).
func TestGetCertificateHostPolicy(t *testing.T) {
	c := newACME(t, t.TempDir(), "e1.example.test").TLSConfig()
	for _, name := range []string{"", "other.example.test", "example.test", "127.0.0.1"} {
		_, err := c.GetCertificate(&tls.ClientHelloInfo{ServerName: name})
		if err == nil {
			t.Errorf("certificate for %q", name)
			continue
		}
		if strings.Contains(err.Error(), "127.0.0.1:1") {
			t.Errorf("%q reached the ACME server: %v", name, err)
		}
	}
}

func TestExpiryACME(t *testing.T) {
	dir := t.TempDir()
	m := newACME(t, dir, "e1.example.test")
	if _, err := m.Expiry("other.example.test"); !errors.Is(err, ErrUnknownHost) {
		t.Errorf("unknown host: %v, want ErrUnknownHost", err)
	}
	if exp, err := m.Expiry("e1.example.test"); err != nil || !exp.IsZero() {
		t.Errorf("before issuance: %v, %v; want zero time, nil", exp, err)
	}

	// An entry in autocert's format: private key, then the chain from the leaf.
	cert, entry, err := generateLocal(start, []string{"e1.example.test"})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "e1.example.test"), entry, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{"e1.example.test", "E1.Example.Test."} {
		exp, err := m.Expiry(host)
		if err != nil || !exp.Equal(cert.Leaf.NotAfter) {
			t.Errorf("Expiry(%q) = %v, %v; want %v", host, exp, err, cert.Leaf.NotAfter)
		}
	}

	if err := os.WriteFile(filepath.Join(dir, "e1.example.test"), []byte("-----BEGIN PRIVATE KEY-----\n-----END PRIVATE KEY-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Expiry("e1.example.test"); !errors.Is(err, ErrCorrupt) {
		t.Errorf("corrupt entry: %v, want ErrCorrupt", err)
	}
}

func TestWarm(t *testing.T) {
	if err := newLocal(t, t.TempDir(), start).Warm(t.Context()); err != nil {
		t.Errorf("local mode: %v", err)
	}

	m := newACME(t, t.TempDir(), "e1.example.test", "e2.example.test")
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := m.Warm(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v, want context.Canceled", err)
	}

	err := m.Warm(t.Context())
	if err == nil || !strings.Contains(err.Error(), "e1.example.test") {
		t.Errorf("unreachable CA: %v, want an error naming the first domain", err)
	}
}
