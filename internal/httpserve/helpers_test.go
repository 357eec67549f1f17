package httpserve

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/dt-cdn/dt/blobs"
	"github.com/dt-cdn/dt/internal/connlimit"
	"github.com/dt-cdn/dt/internal/testkit/testcert"
	"github.com/dt-cdn/dt/site"
	"github.com/dt-cdn/dt/static"
)

// siteServer is a Server of a static site as dt edge runs one: package static's handler, whose
// SendTimeout is the server's, connection caps (their defaults unless the Config gives them),
// and the edge's metric names.
type siteServer struct {
	*Server
	handler *static.Handler
}

// newSiteServer returns a siteServer with no site (it answers 503 until SetSite).
func newSiteServer(cfg Config) (*siteServer, error) {
	h := static.NewHandler(static.HandlerConfig{SendTimeout: cmp.Or(cfg.SendTimeout, DefaultSendTimeout)})
	cfg.Handler = h
	if cfg.ConnCaps == nil {
		cfg.ConnCaps = &connlimit.Config{}
	}
	cfg.Subsystem = "edge"
	s, err := New(cfg)
	if err != nil {
		return nil, err
	}
	return &siteServer{Server: s, handler: h}, nil
}

// SetSite switches the served deploy.
func (s *siteServer) SetSite(st *static.Site) { s.handler.SetSite(st) }

// testFile describes a file of a test deploy.
type testFile struct {
	body    []byte
	typ     string
	chunkAt []int // split the content into chunks at these offsets
}

// deploy is a test deploy: its manifest and its Site.
type deploy struct {
	m    *site.Manifest
	site *static.Site
}

var testCreated = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// newDeploy writes files to a blob store in a temporary directory and builds their manifest
// and Site.
func newDeploy(t testing.TB, files map[string]*testFile) *deploy {
	t.Helper()
	st, err := blobs.Open(t.TempDir(), blobs.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	m := &site.Manifest{Version: site.ManifestVersion, Created: testCreated, Files: map[string]site.File{}}
	put := func(b []byte) blobs.Hash {
		h := blobs.Sum(b)
		if err := st.PutBytes(h, b); err != nil {
			t.Fatal(err)
		}
		return h
	}
	for p, tf := range files {
		mf := site.File{Hash: blobs.Sum(tf.body), Size: int64(len(tf.body)), Type: tf.typ}
		if len(tf.chunkAt) == 0 {
			put(tf.body)
		} else {
			prev := 0
			for _, at := range append(append([]int(nil), tf.chunkAt...), len(tf.body)) {
				c := tf.body[prev:at]
				mf.Chunks = append(mf.Chunks, site.Chunk{Hash: put(c), Size: int64(len(c))})
				prev = at
			}
		}
		m.Files[p] = mf
	}
	id, err := m.ID()
	if err != nil {
		t.Fatal(err)
	}
	s, err := static.NewSite(id, m, st, static.SiteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return &deploy{m: m, site: s}
}

// randomBytes returns n deterministic pseudo-random bytes.
func randomBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// htmlPage returns an HTML document of about n bytes that names itself.
func htmlPage(name string, n int) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "<!doctype html><title>%s</title>\n", name)
	for b.Len() < n {
		fmt.Fprintf(&b, "<p>%s paragraph %d</p>\n", name, b.Len())
	}
	return []byte(b.String())
}

// serveLoopbackTLS runs s.Serve over TLS on 127.0.0.1 with a self-signed certificate until the
// test ends, and returns its address and a pool that trusts it.
func serveLoopbackTLS(t *testing.T, s *siteServer) (addr string, pool *x509.CertPool) {
	t.Helper()
	cert, pool := testcert.SelfSigned(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, ln, &tls.Config{Certificates: []tls.Certificate{cert}}) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-served:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Serve did not return 10 s after its context ended")
		}
	})
	return ln.Addr().String(), pool
}
