// Package pebble runs Pebble, Let's Encrypt's test ACME server, in-process on loopback for
// tests, assembled as its cmd/pebble does: a CA, a VA that performs real validations against
// loopback listeners, resolving names through a test DNS server, and the ACME front end over
// HTTPS.
//
// Pebble's VA starts a task loop that never ends (va.New); tests that check for leftover
// goroutines ignore it.
package pebble

import (
	"crypto/x509"
	"log"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/letsencrypt/pebble/v2/ca"
	"github.com/letsencrypt/pebble/v2/db"
	"github.com/letsencrypt/pebble/v2/va"
	"github.com/letsencrypt/pebble/v2/wfe"

	"github.com/dt-cdn/dt/internal/testkit/syncbuf"
)

// Options says how the CA validates and issues.
type Options struct {
	// HTTPPort and TLSPort are where the VA validates http-01 and tls-alpn-01 (on whatever
	// address the resolver gives). Zero TLSPort: HTTPPort.
	HTTPPort, TLSPort int
	// Resolver is the DNS server (host:port, TCP) the VA resolves names and DNS-01 TXT through.
	Resolver string
	// Validity is how long issued certificates are valid. Zero: Pebble's default (90 days).
	Validity time.Duration
	// NoAuthzReuse makes every order validate again, as tests of the challenges need.
	NoAuthzReuse bool
	// Wrap, when set, wraps the ACME front end's handler (to watch the requests).
	Wrap func(http.Handler) http.Handler
}

// CA is a running Pebble.
type CA struct {
	// Directory is the ACME directory URL.
	Directory string
	// Client trusts the front end's HTTPS certificate.
	Client *http.Client
	// Roots holds the root every issued chain ends in.
	Roots *x509.CertPool
}

// Start runs Pebble until the test ends; its log is printed when the test fails.
func Start(t testing.TB, o Options) *CA {
	t.Helper()
	// Validate at once instead of after a random pause of up to 5 s, and do not reject 5 % of
	// nonces: the tests check issuance, not the client's retries.
	t.Setenv("PEBBLE_VA_NOSLEEP", "1")
	t.Setenv("PEBBLE_WFE_NONCEREJECT", "0")
	if o.NoAuthzReuse {
		t.Setenv("PEBBLE_AUTHZREUSE", "0")
	}
	if o.TLSPort == 0 {
		o.TLSPort = o.HTTPPort
	}
	logs := &syncbuf.Buffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("pebble log:\n%s", logs.String())
		}
	})
	logger := log.New(logs, "pebble ", log.Lmicroseconds)
	store := db.NewMemoryStore()
	authority := ca.New(logger, store, "", "ecdsa", 0, 1,
		map[string]ca.Profile{"default": {Description: "default", ValidityPeriod: uint64(o.Validity / time.Second)}})
	validator := va.New(logger, o.HTTPPort, o.TLSPort, false, o.Resolver, store)
	front := wfe.New(logger, store, validator, authority, []string{"pebble.letsencrypt.org"}, false, false, 0, 0)
	handler := front.Handler()
	if o.Wrap != nil {
		handler = o.Wrap(handler)
	}
	srv := httptest.NewTLSServer(handler)
	t.Cleanup(srv.Close)
	roots := x509.NewCertPool()
	roots.AddCert(authority.GetRootCert(0).Cert)
	return &CA{Directory: srv.URL + wfe.DirectoryPath, Client: srv.Client(), Roots: roots}
}
