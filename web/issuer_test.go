package web

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dt-cdn/dt/dt"
	"github.com/dt-cdn/dt/internal/testkit/promtest"
	"github.com/dt-cdn/dt/internal/testkit/testcert"
	"github.com/dt-cdn/dt/issuer"
	"github.com/dt-cdn/dt/netcert"
)

// TestIssuerReportsOnPage feeds the page two table certificates, one past its planned renewal,
// the issuer's status record with an error for the other, and the issuer's lease, expired and
// then renewed: each row shows its error and when, the overdue one is flagged, and the page
// says the issuer is down only while the lease has expired.
func TestIssuerReportsOnPage(t *testing.T) {
	r := newTestRedirector(t, time.Hour)
	ca := testcert.NewCA(t)
	var network dt.NetworkKey
	network[0] = 1
	sealer, err := netcert.NewSealer(network)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	certs := NewCertIndex(nil)
	is, err := NewIssuerIndex(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	feed := func(key string, v any) {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		certs.HandleEvent(dt.Event{Type: dt.EventObjectAdded, Key: key, Object: b})
		is.HandleEvent(dt.Event{Type: dt.EventObjectAdded, Key: key, Object: b})
	}
	put := func(renewAfter time.Time, names ...string) {
		chain, key := ca.Issue(t, now.Add(-time.Hour), now.Add(60*24*time.Hour), names...)
		rec, err := netcert.NewRecord(chain, key, sealer, renewAfter)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := rec.Marshal()
		certs.HandleEvent(dt.Event{Type: dt.EventObjectAdded, Key: rec.TableKey(), Object: b})
	}
	put(now.Add(-RenewOverdue-time.Minute), "*.cdn.example.com", "cdn.example.com")
	put(now.Add(30*24*time.Hour), "www.example.com")
	failed := now.Add(-10 * time.Minute).Truncate(time.Second).UTC()
	feed(issuer.StatusKey, issuer.Status{V: 1, Holder: "n1", Updated: failed.Unix(), Certs: []issuer.CertStatus{
		{Name: "*.cdn.example.com", Names: []string{"*.cdn.example.com", "cdn.example.com"}},
		{Name: "www.example.com", Names: []string{"www.example.com"}, Failures: 2, Error: "acme: rate limited",
			LastAttemptUnix: failed.Unix(), NextAttemptUnix: failed.Add(time.Hour).Unix()}}})
	feed(issuer.LeaseKey, issuer.LeaseRecord{V: 1, Holder: "n1", Expires: now.Add(-time.Minute).Unix()})

	_, url := newDashboard(t, Config{Edges: r.svc, Certs: issuedCerts{certs, is}, Issuer: is})
	var snap Snapshot
	getJSON(t, url+"/api/snapshot", &snap)
	if len(snap.Certs) != 2 {
		t.Fatalf("certs %+v", snap.Certs)
	}
	wild, www := snap.Certs[0], snap.Certs[1]
	if !wild.Overdue || !wild.Warn || wild.Error != "" {
		t.Errorf("a certificate past its renewal: %+v", wild)
	}
	if www.Overdue || www.Error != "acme: rate limited" || !www.ErrorAt.Equal(failed) || !www.Warn {
		t.Errorf("a certificate with an error: %+v", www)
	}
	if snap.Issuer == nil || !snap.Issuer.Down || snap.Issuer.Holder != "n1" || !snap.Issuer.Updated.Equal(failed) {
		t.Errorf("expired lease: %+v", snap.Issuer)
	}

	feed(issuer.LeaseKey, issuer.LeaseRecord{V: 1, Holder: "n2", Expires: now.Add(time.Minute).Unix()})
	getJSON(t, url+"/api/snapshot", &snap)
	if snap.Issuer == nil || snap.Issuer.Down || snap.Issuer.Holder != "n2" {
		t.Errorf("renewed lease: %+v", snap.Issuer)
	}
	is.HandleEvent(dt.Event{Type: dt.EventObjectRemoved, Key: issuer.LeaseKey})
	is.HandleEvent(dt.Event{Type: dt.EventObjectRemoved, Key: issuer.StatusKey})
	snap = Snapshot{}
	getJSON(t, url+"/api/snapshot", &snap)
	if snap.Issuer != nil || snap.Certs[1].Error != "" {
		t.Errorf("after removal: issuer %+v, www %+v", snap.Issuer, snap.Certs[1])
	}
}

// TestIssuerStatusRefused: records the page does not show, each for its reason; the reports
// held stay.
func TestIssuerStatusRefused(t *testing.T) {
	reg := prometheus.NewRegistry()
	is, err := NewIssuerIndex(nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	is.HandleEvent(dt.Event{Type: dt.EventObjectAdded, Key: issuer.StatusKey, Object: []byte(`{"v":1,"certs":[{"name":"a.test","error":"x"}]}`)})
	for name, b := range map[string]string{
		"not json":   `{"v":1,`,
		"no version": `{"certs":[]}`,
		"no name":    `{"v":1,"certs":[{"error":"x"}]}`,
		"too large":  `{"v":1,"holder":"` + strings.Repeat("x", MaxIssuerStatusBytes) + `"}`,
		"too many":   `{"v":1,"certs":[` + strings.Repeat(`{"name":"a"},`, netcert.DefaultMaxRecords) + `{"name":"b"}]}`,
	} {
		if _, err := parseIssuerStatus([]byte(b)); !errors.Is(err, errIssuerStatus) {
			t.Errorf("%s: %v", name, err)
		}
		is.HandleEvent(dt.Event{Type: dt.EventObjectAdded, Key: issuer.StatusKey, Object: []byte(b)})
	}
	is.HandleEvent(dt.Event{Type: dt.EventObjectAdded, Key: issuer.LeaseKey, Object: []byte(`{"v":1}`)})
	if got := is.CertReports(); got["a.test"].Error != "x" {
		t.Errorf("reports %+v", got)
	}
	if n := promtest.Value(t, reg, "dt_redirector_issuer_records_refused_total", "record=status"); n != 5 {
		t.Errorf("status records refused: %v, want 5", n)
	}
	if n := promtest.Value(t, reg, "dt_redirector_issuer_records_refused_total", "record=lease"); n != 1 {
		t.Errorf("lease records refused: %v, want 1", n)
	}
}

// FuzzParseIssuerStatus: any bytes either parse into a bounded, named list or are refused.
func FuzzParseIssuerStatus(f *testing.F) {
	f.Add([]byte(`{"v":1,"holder":"h","updated":1,"certs":[{"name":"a.test","names":["a.test"],"error":"x","last_attempt":5}]}`))
	f.Add([]byte(`{"v":2,"certs":null,"future":[1,2]}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := parseIssuerStatus(b)
		if err != nil {
			if !errors.Is(err, errIssuerStatus) {
				t.Fatalf("unwrapped error %v", err)
			}
			return
		}
		if st.V < 1 || len(st.Certs) > netcert.DefaultMaxRecords {
			t.Fatalf("accepted %+v", st)
		}
		for _, c := range st.Certs {
			if c.Name == "" {
				t.Fatalf("accepted a nameless certificate")
			}
		}
		_ = reportsOf(st)
	})
}
