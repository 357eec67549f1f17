package web

import (
	"slices"
	"testing"
	"time"

	"github.com/dt-cdn/dt/dt"
	"github.com/dt-cdn/dt/heartbeat"
	"github.com/dt-cdn/dt/internal/testkit/testcert"
	"github.com/dt-cdn/dt/netcert"
)

// certErrors is a CertSource with the issuer's errors, as an issuer's error records would give.
type certErrors struct {
	*CertIndex
	errs map[string]string
}

func (c certErrors) CertErrors() map[string]string { return c.errs }

// TestSnapshotShowsCertificates feeds the page two table certificates (one expiring within the
// warning window, with an error) and three edges (one serving both, one lacking the wildcard and
// holding a name of its own, one of an earlier release), and checks each certificate's row.
func TestSnapshotShowsCertificates(t *testing.T) {
	r := newTestRedirector(t, time.Hour)
	ca := testcert.NewCA(t)
	var network dt.NetworkKey
	network[0] = 1
	sealer, err := netcert.NewSealer(network)
	if err != nil {
		t.Fatal(err)
	}
	idx := NewCertIndex(nil)
	now := time.Now()
	put := func(validFor time.Duration, names ...string) {
		chain, key := ca.Issue(t, now.Add(-time.Hour), now.Add(validFor), names...)
		rec, err := netcert.NewRecord(chain, key, sealer, now.Add(validFor/2))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := rec.Marshal()
		idx.HandleEvent(dt.Event{Type: dt.EventObjectAdded, Key: rec.TableKey(), Object: b})
	}
	put(60*24*time.Hour, "*.cdn.example.com", "cdn.example.com")
	put(3*24*time.Hour, "www.example.com")
	beat := func(i byte, certs []heartbeat.CertState) {
		h := heartbeat.Heartbeat{Seq: 1, Time: time.Now().UnixMilli(), PublicURL: "https://e.example", CertExpiry: now.Add(time.Hour).UnixMilli()}
		if certs != nil {
			h.SetCerts(certs)
		}
		b, err := heartbeat.Encode(h)
		if err != nil {
			t.Fatal(err)
		}
		r.svc.HandleEvent(dt.Event{Type: dt.EventMessageReceived, From: edgeID(i), Object: b})
	}
	day := 24 * time.Hour
	beat(1, []heartbeat.CertState{{Name: "*.cdn.example.com", NotAfter: now.Add(60 * day)}, {Name: "www.example.com", NotAfter: now.Add(3 * day)}})
	beat(2, []heartbeat.CertState{{Name: "*.cdn.example.com"}, {Name: "www.example.com", NotAfter: now.Add(3 * day)}, {Name: "e2.example.net", NotAfter: now.Add(80 * day)}})
	beat(3, nil)

	_, url := newDashboard(t, Config{Edges: r.svc, Certs: certErrors{idx, map[string]string{"www.example.com": "order failed: rate limited"}}})
	var snap Snapshot
	getJSON(t, url+"/api/snapshot", &snap)
	if len(snap.Certs) != 3 {
		t.Fatalf("certs %+v", snap.Certs)
	}
	wild, www, own := snap.Certs[0], snap.Certs[1], snap.Certs[2]
	e1, e2 := edgeID(1).String(), edgeID(2).String()
	if wild.Name != "*.cdn.example.com" || wild.Source != "table" || wild.Issuer != "dt test CA" || wild.NotAfter.IsZero() ||
		!slices.Equal(wild.Serving, []string{e1}) || !slices.Equal(wild.Lacking, []string{e2}) || !wild.Warn {
		t.Errorf("wildcard: %+v", wild)
	}
	if www.Name != "www.example.com" || len(www.Serving) != 2 || len(www.Lacking) != 0 || !www.Warn ||
		www.Error != "order failed: rate limited" || www.RenewAfter.IsZero() {
		t.Errorf("www: %+v", www)
	}
	if own.Name != "e2.example.net" || own.Source != "edge" || !slices.Equal(own.Serving, []string{e2}) || own.Warn {
		t.Errorf("an edge's own: %+v", own)
	}
	idx.HandleEvent(dt.Event{Type: dt.EventObjectRemoved, Key: netcert.Key("www.example.com")})
	if got := idx.Certificates(); len(got) != 1 || got[0].Key != nil {
		t.Errorf("after removal: %+v", got)
	}
}

// TestCertIndexWithoutBody: a record whose event carries no body (a lazy node) is listed by its
// first name, as partial, and not flagged for lacking details.
func TestCertIndexWithoutBody(t *testing.T) {
	idx := NewCertIndex(nil)
	idx.HandleEvent(dt.Event{Type: dt.EventObjectAdded, Key: netcert.Key("big.example.com")})
	idx.HandleEvent(dt.Event{Type: dt.EventObjectAdded, Key: netcert.Key("bad.example.com"), Object: []byte(`{}`)})
	recs := idx.Certificates()
	rows := certRows(time.Now(), recs, nil, nil, DefaultCertWarn)
	if len(rows) != 1 || rows[0].Name != "big.example.com" || !rows[0].Partial || rows[0].Warn {
		t.Errorf("rows %+v", rows)
	}
}
