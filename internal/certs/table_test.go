package certs

import (
	"crypto/tls"
	"net"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/dt-cdn/dt/internal/testkit/testcert"
)

// tableOf is a Table holding one certificate for the hosts under a suffix.
type tableOf struct {
	suffix string
	cert   *tls.Certificate
}

func (t tableOf) Lookup(host string) *tls.Certificate {
	if strings.HasSuffix(host, t.suffix) {
		return t.cert
	}
	return nil
}

// TestTLSConfigWithTable handshakes over loopback: names the table covers get its certificate,
// other names and handshakes without a name the Manager's own.
func TestTLSConfigWithTable(t *testing.T) {
	ca := testcert.NewCA(t)
	chain, key := ca.Issue(t, time.Now().Add(-time.Hour), time.Now().Add(time.Hour), "*.cdn.example.test")
	table := tableOf{suffix: ".cdn.example.test", cert: &tls.Certificate{Certificate: chain, PrivateKey: key}}
	m := newLocal(t, t.TempDir(), time.Now())
	ln, err := tls.Listen("tcp", "127.0.0.1:0", m.TLSConfigWith(table))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	served := func(name string) []byte {
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", ln.Addr().String(),
			&tls.Config{ServerName: name, InsecureSkipVerify: true})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].Raw
	}
	if got := served("site.cdn.example.test"); string(got) != string(chain[0]) {
		t.Error("a name the table covers did not get the table's certificate")
	}
	local := m.local.Certificate[0]
	if got := served("other.example.test"); string(got) != string(local) {
		t.Error("a name the table lacks did not get the Manager's certificate")
	}
	if got := served(""); string(got) != string(local) {
		t.Error("a handshake without a server name did not get the Manager's certificate")
	}
}

// TestHTTPHandlerWithTable: in ACME mode, a host the table covers is redirected to HTTPS like
// the Manager's own domains; other hosts still get 404.
func TestHTTPHandlerWithTable(t *testing.T) {
	table := tableOf{suffix: ".cdn.example.test", cert: &tls.Certificate{}}
	h := newACME(t, t.TempDir(), "e1.example.test").HTTPHandlerWith(nil, table)
	for host, want := range map[string]int{"e1.example.test": 308, "blog.cdn.example.test": 308, "other.example.test": 404} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, newRequest("GET", host, "/x"))
		if w.Code != want || want == 308 && w.Header().Get("Location") != "https://"+host+"/x" {
			t.Errorf("%s: %d %q, want %d", host, w.Code, w.Header().Get("Location"), want)
		}
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, newRequest("GET", "blog.cdn.example.test", "/.well-known/acme-challenge/tok"))
	if w.Code != 308 {
		t.Errorf("a challenge path of a table host: %d, want the redirect (autocert has no challenge for it)", w.Code)
	}
}
