package edge

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dt-cdn/dt/dt"
	"github.com/dt-cdn/dt/heartbeat"
	"github.com/dt-cdn/dt/internal/certs"
	"github.com/dt-cdn/dt/internal/testkit/testcert"
	"github.com/dt-cdn/dt/netcert"
)

// TestCertStatus: an edge whose own ACME certificate expired reports it (cert_expiry still says
// when) and no valid certificate for its name; a table wildcard covering the name then gives it
// one, the table's names reported too.
func TestCertStatus(t *testing.T) {
	dir := t.TempDir()
	ca := testcert.NewCA(t)
	now := time.Now().Truncate(time.Second)
	chain, key := ca.Issue(t, now.Add(-48*time.Hour), now.Add(-time.Hour), "e1.example.test")
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	entry := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})
	entry = append(entry, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: chain[0]})...)
	if err := os.WriteFile(filepath.Join(dir, "e1.example.test"), entry, 0o600); err != nil { // autocert's cache entry
		t.Fatal(err)
	}
	own, err := certs.New(certs.Config{Domains: []string{"e1.example.test"}, CacheDir: dir, ACMEDirectory: "https://127.0.0.1:1/directory"})
	if err != nil {
		t.Fatal(err)
	}
	var network dt.NetworkKey
	sealer, _ := netcert.NewSealer(network)
	table, err := netcert.NewStore(netcert.StoreConfig{Sealer: sealer})
	if err != nil {
		t.Fatal(err)
	}
	s := certStatus{table: table, own: own, host: "e1.example.test", now: time.Now}
	states := func() map[string]time.Time {
		out := map[string]time.Time{}
		for _, st := range s.states() {
			out[st.Name] = st.NotAfter
		}
		return out
	}
	if got := s.expiry(); !got.Equal(now.Add(-time.Hour)) {
		t.Errorf("expiry with an expired certificate of its own: %v", got)
	}
	if got := states(); len(got) != 1 || !got["e1.example.test"].IsZero() {
		t.Errorf("states: %v, want e1.example.test without a valid certificate", got)
	}
	chain, key = ca.Issue(t, now.Add(-time.Hour), now.Add(72*time.Hour), "*.example.test")
	rec, err := netcert.NewRecord(chain, key, sealer, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := rec.Marshal()
	table.HandleEvent(dt.Event{Type: dt.EventObjectAdded, Key: rec.TableKey(), Object: b})
	if got := s.expiry(); !got.Equal(now.Add(72 * time.Hour)) {
		t.Errorf("expiry with a table wildcard: %v", got)
	}
	var h heartbeat.Heartbeat
	var list []heartbeat.CertState
	for name, at := range states() {
		list = append(list, heartbeat.CertState{Name: name, NotAfter: at})
	}
	h.SetCerts(list)
	if v, _ := h.Certs.ValidFor("e1.example.test", now); !v || h.Certs.N != 2 {
		t.Errorf("report %+v", h.Certs)
	}
}
