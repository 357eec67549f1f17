package certs

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dt-cdn/dt/dt"
	"github.com/dt-cdn/dt/internal/testkit/testcert"
	"github.com/dt-cdn/dt/netcert"
)

// BenchmarkHTTPHandlerRedirect measures one port-80 redirect.
func BenchmarkHTTPHandlerRedirect(b *testing.B) {
	h := newACME(b, b.TempDir(), "e1.example.test").HTTPHandler(nil)
	r := newRequest("GET", "e1.example.test", "/assets/app.js?v=3")
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
	}
}

// BenchmarkExpiry measures the cost a heartbeat pays to report the certificate expiry: one
// read and parse of the cached certificate.
func BenchmarkExpiry(b *testing.B) {
	dir := b.TempDir()
	m := newACME(b, dir, "e1.example.test")
	_, entry, err := generateLocal(start, []string{"e1.example.test"})
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "e1.example.test"), entry, 0o600); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := m.Expiry("e1.example.test"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLocalHandshake measures a full TLS 1.3 handshake with the local certificate over
// net.Pipe, the per-connection cost of HTTPS without session resumption.
func BenchmarkLocalHandshake(b *testing.B) {
	m, err := New(Config{})
	if err != nil {
		b.Fatal(err)
	}
	server := m.TLSConfig()
	client := &tls.Config{InsecureSkipVerify: true, ServerName: "localhost"}
	for b.Loop() {
		c1, c2 := net.Pipe()
		done := make(chan error, 1)
		go func() { done <- tls.Server(c1, server).Handshake() }()
		if err := tls.Client(c2, client).Handshake(); err != nil {
			b.Fatal(err)
		}
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		c1.Close()
		c2.Close()
	}
}

// BenchmarkTableHandshake is BenchmarkLocalHandshake with the certificate from a table store
// (netcert.Store, holding 1,000 certificates), asked before the local one: what serving the
// network's certificates adds to a handshake.
func BenchmarkTableHandshake(b *testing.B) {
	m, err := New(Config{})
	if err != nil {
		b.Fatal(err)
	}
	var network dt.NetworkKey
	network[0] = 1
	sealer, err := netcert.NewSealer(network)
	if err != nil {
		b.Fatal(err)
	}
	store, err := netcert.NewStore(netcert.StoreConfig{Sealer: sealer})
	if err != nil {
		b.Fatal(err)
	}
	ca := testcert.NewCA(b)
	for i := range 1000 {
		chain, key := ca.Issue(b, time.Now().Add(-time.Hour), time.Now().Add(time.Hour), fmt.Sprintf("s%d.example.test", i))
		rec, err := netcert.NewRecord(chain, key, sealer, time.Time{})
		if err != nil {
			b.Fatal(err)
		}
		body, _ := rec.Marshal()
		store.HandleEvent(dt.Event{Type: dt.EventObjectAdded, Key: rec.TableKey(), Object: body})
	}
	server := m.TLSConfigWith(store)
	client := &tls.Config{RootCAs: ca.Pool(), ServerName: "s500.example.test"}
	for b.Loop() {
		c1, c2 := net.Pipe()
		done := make(chan error, 1)
		go func() { done <- tls.Server(c1, server).Handshake() }()
		if err := tls.Client(c2, client).Handshake(); err != nil {
			b.Fatal(err)
		}
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		c1.Close()
		c2.Close()
	}
}
