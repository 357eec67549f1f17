package main

import (
	"bytes"
	"compress/gzip"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	mrand "math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/dt-cdn/dt/blobs"
	"github.com/dt-cdn/dt/site"
	"github.com/dt-cdn/dt/static"
)

// benchFile is one file every server serves. (The page is not index.html: http.FileServer
// redirects that name to its directory.)
type benchFile struct {
	name    string // test name
	path    string // URL path
	body    []byte
	gz      []byte // precompressed variant, if any
	typ     string
	gzipped bool // requests send Accept-Encoding: gzip
}

// fixture is what the servers serve: the files in www/ (with .gz beside the script, for nginx's
// gzip_static and Caddy's precompressed), the same content as an edge Site, and a certificate.
type fixture struct {
	www      string
	files    []benchFile
	site     *static.Site
	store    *blobs.Store
	certFile string
	keyFile  string
	cert     tls.Certificate
	key      *ecdsa.PrivateKey // cert's (ECDSA P-256)
	pool     *x509.CertPool
}

func makeFixture(dir string) (*fixture, error) {
	fx := &fixture{www: filepath.Join(dir, "www")}
	if err := os.MkdirAll(fx.www, 0o755); err != nil {
		return nil, err
	}
	js := jsSource(100 << 10)
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression) // precompressed once, as publish does
	zw.Write(js)
	zw.Close()
	fx.files = []benchFile{
		{name: "html-1KiB", path: "/page.html", body: htmlPage(1024), typ: "text/html; charset=utf-8"},
		{name: "js-100KiB-gzip", path: "/app.js", body: js, gz: gz.Bytes(), typ: "text/javascript; charset=utf-8", gzipped: true},
		// The same script without a compressed variant, asked for without Accept-Encoding: 100 KiB
		// from disk (it is over the edge's in-memory size), as a client that does not
		// compress gets it.
		{name: "js-100KiB", path: "/plain.js", body: js, typ: "text/javascript; charset=utf-8"},
		{name: "bin-10MiB", path: "/big.bin", body: randomBytes(10 << 20), typ: "application/octet-stream"},
	}
	store, err := blobs.Open(filepath.Join(dir, "blobs"), blobs.Options{NoSync: true})
	if err != nil {
		return nil, err
	}
	fx.store = store
	m := &site.Manifest{Version: site.ManifestVersion, Created: time.Now().Truncate(time.Second), Files: map[string]site.File{}}
	for _, f := range fx.files {
		if err := os.WriteFile(filepath.Join(fx.www, f.path), f.body, 0o644); err != nil {
			return nil, err
		}
		h := blobs.Sum(f.body)
		if err := store.PutBytes(h, f.body); err != nil {
			return nil, err
		}
		mf := site.File{Hash: h, Size: int64(len(f.body)), Type: f.typ}
		if f.gz != nil {
			if err := os.WriteFile(filepath.Join(fx.www, f.path+".gz"), f.gz, 0o644); err != nil {
				return nil, err
			}
			gh := blobs.Sum(f.gz)
			if err := store.PutBytes(gh, f.gz); err != nil {
				return nil, err
			}
			mf.Variants = map[string]site.Variant{site.EncodingGzip: {Hash: gh, Size: int64(len(f.gz))}}
		}
		m.Files[f.path] = mf
	}
	id, err := m.ID()
	if err != nil {
		return nil, err
	}
	if fx.site, err = static.NewSite(id, m, store, static.SiteOptions{}); err != nil {
		return nil, err
	}
	if err := fx.makeCert(dir); err != nil {
		return nil, err
	}
	return fx, nil
}

// makeCert makes a self-signed ECDSA P-256 certificate for 127.0.0.1 and benchName and writes
// it for nginx and Caddy.
func (fx *fixture) makeCert(dir string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:     []string{benchName},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	fx.certFile, fx.keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
	if err := os.WriteFile(fx.certFile, certPEM, 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(fx.keyFile, keyPEM, 0o644); err != nil {
		return err
	}
	if fx.cert, err = tls.X509KeyPair(certPEM, keyPEM); err != nil {
		return err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return err
	}
	fx.pool = x509.NewCertPool()
	fx.pool.AddCert(leaf)
	fx.key = key
	return nil
}

// htmlPage returns an HTML page of exactly n bytes.
func htmlPage(n int) []byte {
	var b strings.Builder
	b.WriteString("<!doctype html><html><head><title>edge benchmark</title></head><body>\n")
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "<p>Paragraph %d of the benchmark page.</p>\n", i)
	}
	return []byte(b.String()[:n])
}

// jsSource returns n bytes of plausible JavaScript that compresses about as well as real
// bundles (3-4x with gzip).
func jsSource(n int) []byte {
	r := mrand.New(mrand.NewPCG(7, 7))
	words := []string{"const", "let", "function", "return", "if", "else", "for", "await", "async",
		"this", "props", "state", "value", "index", "length", "push", "map", "filter", "render",
		"document", "window", "element", "event", "target", "options", "config", "result", "data"}
	var b strings.Builder
	for b.Len() < n {
		fmt.Fprintf(&b, "%s %s_%d = %s(%s.%s, %d, %q);\n", words[r.IntN(3)], words[r.IntN(len(words))],
			r.IntN(1000), words[r.IntN(len(words))], words[r.IntN(len(words))], words[r.IntN(len(words))],
			r.IntN(100000), words[r.IntN(len(words))])
	}
	return []byte(b.String()[:n])
}

// randomBytes returns n incompressible bytes.
func randomBytes(n int) []byte {
	r := mrand.New(mrand.NewPCG(3, 3))
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		v := r.Uint64()
		for j := range 8 {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}
