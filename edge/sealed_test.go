package edge

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dt-cdn/dt/dt"
	"github.com/dt-cdn/dt/internal/testkit/faultnet"
	"github.com/dt-cdn/dt/internal/testkit/testcert"
	"github.com/dt-cdn/dt/internal/testkit/testnet"
	"github.com/dt-cdn/dt/internal/testkit/wait"
	"github.com/dt-cdn/dt/netcert"
)

// lockedBuffer is a bytes.Buffer safe to read while the proxy writes to it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.buf.Bytes())
}

// clearForms returns the forms a private key would take in the clear: its scalar, its PKCS #8
// and SEC 1 DER, those in base64 (as JSON encodes bytes) and in PEM.
func clearForms(t *testing.T, key *ecdsa.PrivateKey) map[string][]byte {
	t.Helper()
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	sec1, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	scalar, err := key.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	pemBody := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8})
	// A PEM file's body is base64 in 64-character lines: its first line is enough to find it.
	firstLine := strings.Split(string(pemBody), "\n")[1]
	return map[string][]byte{
		"scalar": scalar, "PKCS #8 DER": pkcs8, "SEC 1 DER": sec1,
		"PKCS #8 base64": []byte(base64.StdEncoding.EncodeToString(pkcs8)),
		"SEC 1 base64":   []byte(base64.StdEncoding.EncodeToString(sec1)),
		"PEM":            pemBody, "PEM line": []byte(firstLine),
	}
}

// TestSealedKeyNeverInTheClear writes a certificate record through a master to an edge whose
// only link to it is a proxy recording every byte, waits until the edge serves the certificate
// (so it opened the key), stops both, and searches the recorded stream and every file under
// both nodes' data directories (databases, blob stores, certificate caches) for the private key
// in every clear form. The record is large enough (100 long names) that its body does not ride
// inline, so it also goes through the blob stores.
func TestSealedKeyNeverInTheClear(t *testing.T) {
	keys, plain := testnet.Keys(t)
	masterDir, edgeDir := t.TempDir(), t.TempDir()
	cfg := dt.LocalConfig()
	cfg.Keys, cfg.Master, cfg.DataDir, cfg.NoSync, cfg.Listen = keys, true, masterDir, true, []string{"127.0.0.1:0"}
	master, err := dt.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { master.Close() })
	testnet.Drain(master)
	proxy, err := faultnet.New("127.0.0.1:0", testnet.Addr(master))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxy.Close() })
	var wire lockedBuffer
	proxy.Record(&wire)
	r, stopEdge := runEdgeIn(t, edgeDir, plain, []string{proxy.Addr()})

	ca := testcert.NewCA(t)
	names := make([]string, netcert.MaxNames)
	for i := range names {
		names[i] = fmt.Sprintf("%s-%03d.%s.example.test", strings.Repeat("n", 50), i, strings.Repeat("z", 20))
	}
	chain, key := ca.Issue(t, time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour), names...)
	sealer, err := netcert.NewSealer(keys.Network)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := netcert.NewRecord(chain, key, sealer, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	body, err := rec.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if len(body) <= dt.DefaultInlineBodyMax {
		t.Fatalf("record of %d bytes rides inline; the test wants it in the blob stores", len(body))
	}
	if err := master.Put(context.Background(), rec.TableKey(), body); err != nil {
		t.Fatal(err)
	}
	wait.For(t, 20*time.Second, func() error {
		_, err := verifiedLeaf(r.Serving.HTTPS, names[7], ca.Pool())
		return err
	})
	stopEdge()
	master.Close()
	proxy.Close()

	forms := clearForms(t, key)
	recorded := wire.Bytes()
	if len(recorded) < len(body) {
		t.Fatalf("the proxy recorded %d bytes, less than the record's %d", len(recorded), len(body))
	}
	check := func(where string, b []byte) {
		for form, clear := range forms {
			if bytes.Contains(b, clear) {
				t.Errorf("the private key (%s) is in the clear in %s", form, where)
			}
		}
	}
	check("the bytes on the wire", recorded)
	files := 0
	for _, dir := range []string{masterDir, edgeDir} {
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			files++
			check(path, b)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if files < 4 {
		t.Errorf("searched %d files only", files)
	}
	// The search itself works: the sealed key is in the master's files, and the clear forms
	// would be found if written.
	if !containsInDir(t, masterDir, rec.Key) {
		t.Error("the sealed key is not in the master's files: the search looks in the wrong place")
	}
}

// containsInDir reports whether some file under dir holds b.
func containsInDir(t *testing.T, dir string, b []byte) bool {
	t.Helper()
	found := false
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || found {
			return err
		}
		data, err := os.ReadFile(path)
		found = found || bytes.Contains(data, b) || bytes.Contains(data, []byte(base64.StdEncoding.EncodeToString(b)))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}
