package challenge

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dt-cdn/dt/dt"
	"github.com/dt-cdn/dt/internal/testkit/promtest"
)

func addHTTP01(t *testing.T, s *Set, domain, token string, expires time.Time) string {
	t.Helper()
	r := HTTP01{V: Version, Domain: domain, Token: token, KeyAuthorization: token + "." + thumb, Expires: expires.Unix()}
	b, err := r.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	s.HandleEvent(dt.Event{Type: dt.EventObjectAdded, Key: HTTP01Key(token), Object: b})
	return HTTP01Key(token)
}

func TestSetAnswersHTTP01(t *testing.T) {
	now := time.Now()
	s, err := NewSet(SetConfig{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	addHTTP01(t, s, "www.example.com", "tok-live_1", now.Add(time.Hour))
	addHTTP01(t, s, "www.example.com", "tokexpired", now.Add(-time.Second))
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "next", http.StatusTeapot) })
	h := s.Handler(next)
	for _, c := range []struct {
		method, host, path string
		code               int
		body               string
	}{
		{"GET", "www.example.com", HTTP01Path + "tok-live_1", 200, "tok-live_1." + thumb},
		{"HEAD", "WWW.example.com.:80", HTTP01Path + "tok-live_1", 200, "tok-live_1." + thumb}, // the server drops the body
		{"GET", "other.example.com", HTTP01Path + "tok-live_1", http.StatusTeapot, "next\n"},
		{"GET", "www.example.com", HTTP01Path + "tokexpired", http.StatusTeapot, "next\n"},
		{"GET", "www.example.com", HTTP01Path + "unknown", http.StatusTeapot, "next\n"},
		{"POST", "www.example.com", HTTP01Path + "tok-live_1", http.StatusTeapot, "next\n"},
		{"GET", "www.example.com", "/index.html", http.StatusTeapot, "next\n"},
	} {
		req := httptest.NewRequest(c.method, "http://"+c.host+c.path, nil)
		req.Host = c.host
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != c.code || w.Body.String() != c.body {
			t.Errorf("%s %s%s: %d %q, want %d %q", c.method, c.host, c.path, w.Code, w.Body.String(), c.code, c.body)
		}
	}
}

func TestSetHeldDigest(t *testing.T) {
	now := time.Now()
	reg := prometheus.NewRegistry()
	s, err := NewSet(SetConfig{Now: func() time.Time { return now }, MaxHeld: 3, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	k1 := addHTTP01(t, s, "a.example.com", "token1", now.Add(time.Hour))
	addHTTP01(t, s, "a.example.com", "token2", now.Add(-time.Hour)) // held, not live
	d, _ := NewDNS01("cdn.example.com", []string{thumb}, now.Add(time.Hour))
	b, _ := d.Marshal()
	s.HandleEvent(dt.Event{Type: dt.EventObjectAdded, Key: DNS01Key(d.Domain), Object: b})
	s.HandleEvent(dt.Event{Type: dt.EventObjectAdded, Key: "acme/lease", Object: []byte(`{"holder":"x"}`)})
	if n, digest := s.Held(); n != 2 || digest != Digest([]string{DNS01Key(d.Domain), k1}) {
		t.Errorf("Held = %d, %s; want 2, the digest of the live keys", n, digest)
	}
	addHTTP01(t, s, "a.example.com", "token3", now.Add(time.Hour)) // a fourth: over MaxHeld
	s.HandleEvent(dt.Event{Type: dt.EventObjectAdded, Key: HTTP01Key("bad"), Object: []byte(`{`)})
	if got := promtest.Value(t, reg, "dt_acme_refused_total", "reason=limit"); got != 1 {
		t.Errorf("refused{limit} = %v", got)
	}
	if got := promtest.Value(t, reg, "dt_acme_refused_total", "reason=invalid"); got != 1 {
		t.Errorf("refused{invalid} = %v", got)
	}
	s.HandleEvent(dt.Event{Type: dt.EventObjectRemoved, Key: k1})
	if n, digest := s.Held(); n != 1 || !strings.EqualFold(digest, Digest([]string{DNS01Key(d.Domain)})) {
		t.Errorf("after removal: %d, %s", n, digest)
	}
}

// TestSetTXT: the TXT values of a live DNS-01 record answer for its domain alone, until it
// expires or leaves the table.
func TestSetTXT(t *testing.T) {
	now := time.Now()
	s, err := NewSet(SetConfig{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	value := strings.Repeat("v", 43)
	for domain, expires := range map[string]time.Time{"www.example.com": now.Add(time.Hour), "old.example.com": now.Add(-time.Second)} {
		r, err := NewDNS01(domain, []string{value}, expires)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := r.Marshal()
		s.HandleEvent(dt.Event{Type: dt.EventObjectAdded, Key: DNS01Key(domain), Object: b})
	}
	if got := s.TXT("www.example.com"); len(got) != 1 || got[0] != value {
		t.Errorf("TXT of a live record = %v", got)
	}
	if got := s.TXT("old.example.com"); got != nil {
		t.Errorf("TXT of an expired record = %v", got)
	}
	if got := s.TXT("example.com"); got != nil {
		t.Errorf("TXT of no record = %v", got)
	}
	s.HandleEvent(dt.Event{Type: dt.EventObjectRemoved, Key: DNS01Key("www.example.com")})
	if got := s.TXT("www.example.com"); got != nil {
		t.Errorf("TXT of a removed record = %v", got)
	}
}
