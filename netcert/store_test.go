package netcert

import (
	"crypto/tls"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dt-cdn/dt/dt"
	"github.com/dt-cdn/dt/internal/testkit/promtest"
	"github.com/dt-cdn/dt/internal/testkit/testcert"
)

// storeFixture is a Store fed by hand, at a fixed clock, and the CA and sealer its records use.
type storeFixture struct {
	t   *testing.T
	ca  *testcert.CA
	s   *Sealer
	now time.Time
	st  *Store
	reg *prometheus.Registry
}

func newStoreFixture(t *testing.T, max int) *storeFixture {
	f := &storeFixture{t: t, ca: testcert.NewCA(t), s: sealer(t, 1), now: time.Now().Truncate(time.Second), reg: prometheus.NewRegistry()}
	st, err := NewStore(StoreConfig{Sealer: f.s, MaxRecords: max, Now: func() time.Time { return f.now }, Registerer: f.reg})
	if err != nil {
		t.Fatal(err)
	}
	f.st = st
	return f
}

// put issues a certificate for names valid from from to to (relative to the clock), seals it
// with sealer s and hands the store its record; it returns the record.
func (f *storeFixture) put(s *Sealer, from, to time.Duration, names ...string) Record {
	f.t.Helper()
	chain, key := f.ca.Issue(f.t, f.now.Add(from), f.now.Add(to), names...)
	r, err := NewRecord(chain, key, s, time.Time{})
	if err != nil {
		f.t.Fatal(err)
	}
	b, err := r.Marshal()
	if err != nil {
		f.t.Fatal(err)
	}
	f.st.HandleEvent(dt.Event{Type: dt.EventObjectAdded, Key: r.TableKey(), Object: b})
	return r
}

// served returns the NotAfter of the certificate served for host, zero for none.
func (f *storeFixture) served(host string) time.Time {
	c, err := f.st.GetCertificate(&tls.ClientHelloInfo{ServerName: host})
	if err != nil {
		return time.Time{}
	}
	return c.Leaf.NotAfter
}

func TestStoreExactThenWildcard(t *testing.T) {
	f := newStoreFixture(t, 0)
	day := 24 * time.Hour
	f.put(f.s, -day, 30*day, "*.cdn.example.com", "cdn.example.com")
	f.put(f.s, -day, 60*day, "www.example.com")
	f.put(f.s, -day, 20*day, "blog--ams.cdn.example.com")
	for host, want := range map[string]time.Duration{
		"www.example.com": 60 * day, "WWW.Example.COM.": 60 * day,
		"cdn.example.com": 30 * day, "site.cdn.example.com": 30 * day,
		"blog--ams.cdn.example.com": 20 * day, // the exact name wins over a longer-lived wildcard
		"a.b.cdn.example.com":       0, "example.com": 0, "": 0,
	} {
		got := f.served(host)
		if want == 0 && !got.IsZero() || want != 0 && !got.Equal(f.now.Add(want)) {
			t.Errorf("%q: served certificate expiring %v, want now+%v", host, got, want)
		}
	}
}

func TestStoreNewestValidWins(t *testing.T) {
	f := newStoreFixture(t, 0)
	day := 24 * time.Hour
	f.put(f.s, -day, 10*day, "a.example.com", "b.example.com")
	f.put(f.s, -day, 40*day, "b.example.com", "c.example.com")
	// Records are keyed by their first name, so these two sort a name before "b".
	f.put(f.s, day, 90*day, "0.example.com", "b.example.com")                    // not valid yet
	f.put(f.s, -90*day, -day, "1.example.com", "b.example.com", "d.example.com") // expired
	if got := f.served("b.example.com"); !got.Equal(f.now.Add(40 * day)) {
		t.Errorf("b: %v, want the valid one expiring last", got)
	}
	if got := f.served("d.example.com"); !got.IsZero() {
		t.Errorf("d: served an expired certificate (%v)", got)
	}
	f.now = f.now.Add(2 * day) // now the third is valid, and expires last
	if got := f.served("b.example.com"); !got.Equal(f.now.Add(88 * day)) {
		t.Errorf("b two days later: %v", got)
	}
}

func TestStoreReplaceAndRemove(t *testing.T) {
	f := newStoreFixture(t, 0)
	day := 24 * time.Hour
	r := f.put(f.s, -day, 10*day, "www.example.com")
	f.put(f.s, -day, 20*day, "www.example.com") // the same table key: a renewal
	if got := f.served("www.example.com"); !got.Equal(f.now.Add(20 * day)) {
		t.Errorf("after renewal: %v", got)
	}
	if f.st.Len() != 1 {
		t.Errorf("Len = %d after replacing one record", f.st.Len())
	}
	f.st.HandleEvent(dt.Event{Type: dt.EventObjectRemoved, Key: r.TableKey()})
	if got := f.served("www.example.com"); !got.IsZero() || f.st.Len() != 0 {
		t.Errorf("after removal: %v, %d held", got, f.st.Len())
	}
}

func TestStoreRefuses(t *testing.T) {
	f := newStoreFixture(t, 2)
	day := 24 * time.Hour
	f.put(sealer(t, 2), -day, 10*day, "sealed.example.com") // another network's key
	if got := f.served("sealed.example.com"); !got.IsZero() {
		t.Error("served a certificate whose key does not open")
	}
	f.st.HandleEvent(dt.Event{Type: dt.EventObjectAdded, Key: Key("x.example.com"), Object: []byte(`{"v":1}`)})
	f.put(f.s, -day, 10*day, "one.example.com")
	f.put(f.s, -day, 10*day, "two.example.com") // a third record: over MaxRecords
	if got := f.served("two.example.com"); !got.IsZero() {
		t.Error("held more records than MaxRecords")
	}
	for reason, want := range map[string]float64{"open": 1, "invalid": 1, "limit": 1} {
		if got := promtest.Value(t, f.reg, "dt_netcert_refused_total", "reason="+reason); got != want {
			t.Errorf("refused{%s} = %v, want %v", reason, got, want)
		}
	}
	if got := promtest.Value(t, f.reg, "dt_netcert_records"); got != 2 {
		t.Errorf("records = %v, want 2", got)
	}
	names := map[string]NameStatus{}
	for _, n := range f.st.Names() {
		names[n.Name] = n
	}
	if n, ok := names["sealed.example.com"]; !ok || !n.NotAfter.IsZero() {
		t.Errorf("a record that does not open is reported as %+v, %v; want its name without a certificate", n, ok)
	}
	if n := names["one.example.com"]; !n.NotAfter.Equal(f.now.Add(10*day)) || n.Issuer != "dt test CA" {
		t.Errorf("one.example.com: %+v", n)
	}
}

func TestStoreIgnoresOtherKeys(t *testing.T) {
	f := newStoreFixture(t, 0)
	f.st.HandleEvent(dt.Event{Type: dt.EventObjectAdded, Key: "site/current", Object: []byte(`{}`)})
	f.st.HandleEvent(dt.Event{Type: dt.EventMessageReceived, Object: []byte(`{}`)})
	if f.st.Len() != 0 || promtest.Sum(t, f.reg, "dt_netcert_refused_total") != 0 {
		t.Error("a record outside certs/ was taken or refused")
	}
}
