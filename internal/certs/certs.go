package certs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"golang.org/x/crypto/acme"
	"golang.org/x/crypto/acme/autocert"
)

// Manager provides the certificates of one node: from an ACME server for its configured
// domains, or a self-signed one in local mode. Its methods may be called concurrently.
type Manager struct {
	cfg     Config
	domains map[string]bool

	// In ACME mode acme and cache are set; in local mode local is. Neither changes after New.
	acme  *autocert.Manager
	cache autocert.Cache
	local *tls.Certificate
}

// New validates cfg and prepares its certificates. With Domains it sets up autocert over a
// cache in cfg.CacheDir and contacts nobody: certificates are obtained by Warm or by the first
// TLS handshake naming each domain. Without Domains it loads the self-signed certificate from
// cfg.CacheDir, or generates and stores one.
func New(cfg Config) (*Manager, error) {
	cfg, err := cfg.normalized()
	if err != nil {
		return nil, err
	}
	if cfg.CacheDir != "" {
		// 0700: the directory holds the account key and every certificate key.
		if err := os.MkdirAll(cfg.CacheDir, 0o700); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrCacheDir, err)
		}
	}
	m := &Manager{cfg: cfg, domains: make(map[string]bool, len(cfg.Domains))}
	if len(cfg.Domains) == 0 {
		m.local, err = loadLocal(cfg.CacheDir, cfg.Now(), localNames(), cfg.Logger)
		if err != nil {
			return nil, err
		}
		return m, nil
	}
	for _, d := range cfg.Domains {
		m.domains[d] = true
	}
	directory := cfg.ACMEDirectory
	if directory == "" {
		directory = autocert.DefaultACMEDirectory
	}
	m.cache = autocert.DirCache(cfg.CacheDir)
	m.acme = &autocert.Manager{
		Prompt:     autocert.AcceptTOS,
		Cache:      m.cache,
		HostPolicy: autocert.HostWhitelist(cfg.Domains...),
		Client: &acme.Client{
			DirectoryURL: directory,
			HTTPClient:   cfg.HTTPClient,
			UserAgent:    "dt",
		},
		Email: cfg.Email,
	}
	return m, nil
}

// Domains returns the configured domains in canonical form (lowercase, no trailing dot), in
// the order given; nil in local mode.
func (m *Manager) Domains() []string {
	return slices.Clone(m.cfg.Domains)
}

// TLSConfig returns a new TLS configuration for an HTTPS server: certificates from the
// Manager, HTTP/2 and HTTP/1.1 offered through ALPN (RFC 7301), TLS 1.2 at least (RFC 9325
// §3.1.1 rules out older versions). In ACME mode it also offers "acme-tls/1" so that the CA can
// validate tls-alpn-01 challenges (RFC 8737 §3) on the same port. In local mode every server
// name, and a handshake without one, gets the self-signed certificate.
//
// Cipher suites and curves are Go's defaults, which keep to AEAD suites with forward secrecy.
// The caller may adjust the returned value; each call returns a fresh one.
func (m *Manager) TLSConfig() *tls.Config {
	c := &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: []string{"h2", "http/1.1"},
	}
	if m.acme != nil {
		c.GetCertificate = m.acme.GetCertificate
		c.NextProtos = append(c.NextProtos, acme.ALPNProto)
		return c
	}
	local := m.local
	c.GetCertificate = func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return local, nil }
	return c
}

// Table is a source of certificates asked before the Manager's own: the network's certificates
// from the dt table (netcert.Store). Lookup returns nil when it has none valid for host.
type Table interface {
	Lookup(host string) *tls.Certificate
}

// TLSConfigWith is TLSConfig with table asked first: a handshake whose server name table covers
// gets table's certificate; any other (no server name, a name table lacks, or a CA's
// tls-alpn-01 validation, which needs autocert's challenge certificate) gets the Manager's, as
// from TLSConfig. A nil table is TLSConfig.
func (m *Manager) TLSConfigWith(table Table) *tls.Config {
	c := m.TLSConfig()
	if table == nil {
		return c
	}
	own := c.GetCertificate
	c.GetCertificate = func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
		if hello.ServerName != "" && !slices.Contains(hello.SupportedProtos, acme.ALPNProto) {
			if cert := table.Lookup(hello.ServerName); cert != nil {
				return cert, nil
			}
		}
		return own(hello)
	}
	return c
}

// Expiry returns the NotAfter of the certificate served for host, for heartbeats. In ACME mode
// it reads the certificate autocert keeps in the cache directory for host (the ECDSA one, which
// every current client gets), so it reflects renewals and survives restarts; it returns the
// zero time and no error while none has been obtained yet, and ErrUnknownHost for a host
// outside Domains. In local mode host is ignored: every name gets the self-signed certificate.
//
// Expiry does not check the certificate chain or revocation; a certificate past its NotAfter
// is still reported, so that the receiver can see how stale it is.
func (m *Manager) Expiry(host string) (time.Time, error) {
	if m.local != nil {
		return m.local.Leaf.NotAfter, nil
	}
	name, err := canonicalDomain(host)
	if err != nil || !m.domains[name] {
		return time.Time{}, fmt.Errorf("%w: %q", ErrUnknownHost, host)
	}
	// DirCache uses the context only to abandon a slow read; there is nothing to cancel here.
	data, err := m.cache.Get(context.Background(), name)
	if errors.Is(err, autocert.ErrCacheMiss) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("certs: read cached certificate for %s: %w", name, err)
	}
	leaf, err := cachedLeaf(data)
	if err != nil {
		return time.Time{}, fmt.Errorf("certs: cached certificate for %s: %w", name, err)
	}
	return leaf.NotAfter, nil
}

// cachedLeaf returns the first certificate of an autocert cache entry: PEM blocks holding the
// private key, then the chain from the leaf up.
func cachedLeaf(data []byte) (*x509.Certificate, error) {
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return nil, fmt.Errorf("%w: no certificate", ErrCorrupt)
		}
		if strings.HasSuffix(b.Type, "PRIVATE KEY") {
			continue
		}
		if b.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("%w: unexpected PEM block %q", ErrCorrupt, b.Type)
		}
		leaf, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
		}
		return leaf, nil
	}
}

// Warm obtains certificates for all Domains now, so that the first visitor does not wait for
// an issuance, and loads cached ones, which also starts autocert's renewal timers for them.
// Domains are handled one after another; a failure does not stop the others, and the first
// error is returned. It does nothing in local mode.
//
// ctx is checked between domains. An issuance already under way cannot be interrupted:
// autocert gives it its own deadline of five minutes.
func (m *Manager) Warm(ctx context.Context) error {
	if m.acme == nil {
		return nil
	}
	var first error
	for _, d := range m.cfg.Domains {
		if err := ctx.Err(); err != nil {
			return errors.Join(first, fmt.Errorf("certs: warm: %w", err))
		}
		cert, err := m.acme.GetCertificate(warmHello(d))
		if err != nil {
			m.cfg.Logger.Warn("Certificate not obtained", slog.String("domain", d), slog.Any("err", err))
			if first == nil {
				first = fmt.Errorf("certs: obtain certificate for %s: %w", d, err)
			}
			continue
		}
		attrs := []any{slog.String("domain", d)}
		if cert.Leaf != nil {
			attrs = append(attrs, slog.Time("not_after", cert.Leaf.NotAfter))
		}
		m.cfg.Logger.Info("Certificate ready", attrs...)
	}
	return first
}

// warmHello is the handshake autocert sees during Warm: one from a client that supports ECDSA,
// so that autocert picks the ECDSA certificate every current client gets (autocert keeps RSA
// ones for old clients only).
func warmHello(domain string) *tls.ClientHelloInfo {
	return &tls.ClientHelloInfo{
		ServerName:        domain,
		CipherSuites:      []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256},
		SignatureSchemes:  []tls.SignatureScheme{tls.ECDSAWithP256AndSHA256},
		SupportedCurves:   []tls.CurveID{tls.CurveP256},
		SupportedProtos:   []string{"h2", "http/1.1"},
		SupportedVersions: []uint16{tls.VersionTLS13, tls.VersionTLS12},
	}
}
