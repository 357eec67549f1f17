package heartbeat

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestSetCertsOrderAndValidFor(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	day := 24 * time.Hour
	var h Heartbeat
	h.SetCerts([]CertState{
		{Name: "*.cdn.example.com", NotAfter: now.Add(60 * day)},
		{Name: "www.example.com", NotAfter: now.Add(5 * day)},
		{Name: "old.example.com", NotAfter: now.Add(-day)},
		{Name: "none.example.com"},
		{Name: "www.example.com", NotAfter: now.Add(20 * day)}, // twice: the later counts
	})
	c := h.Certs
	if c.N != 4 || c.More != 0 || c.Next != now.Add(-day).Unix() {
		t.Fatalf("report %+v", c)
	}
	if got := c.Names[0].Name + "," + c.Names[1].Name; got != "none.example.com,old.example.com" {
		t.Errorf("names without a valid certificate are not first: %v", c.Names)
	}
	for host, want := range map[string]bool{
		"www.example.com": true, "blog.cdn.example.com": true, "*.cdn.example.com": true,
		"old.example.com": false, "none.example.com": false, "other.example.com": false,
		"a.b.cdn.example.com": false,
	} {
		if got, known := c.ValidFor(host, now); got != want || !known {
			t.Errorf("ValidFor(%s) = %v, %v; want %v", host, got, known, want)
		}
	}
	if got, _ := c.ValidFor("www.example.com", now.Add(21*day)); got {
		t.Error("valid after its certificate expired")
	}
	var legacy Heartbeat
	if _, known := legacy.Certs.ValidFor("www.example.com", now); known {
		t.Error("a heartbeat without a report claims to know")
	}
}

// TestSetCertsBounded: many names keep the report within its limits; the names past the list
// expire no sooner than the last listed, so ValidFor answers for them by it.
func TestSetCertsBounded(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	var states []CertState
	for i := range 500 {
		states = append(states, CertState{Name: fmt.Sprintf("%s-%03d.example.com", strings.Repeat("n", 60), i), NotAfter: now.Add(time.Duration(i+1) * time.Hour)})
	}
	h := sample()
	h.SetCerts(states)
	c := h.Certs
	b, _ := json.Marshal(c.Names)
	if len(c.Names) > MaxCertNames || len(b) > MaxCertNamesBytes || c.N != 500 || len(c.Names)+c.More != 500 {
		t.Fatalf("%d listed (%d bytes), %d more, n %d", len(c.Names), len(b), c.More, c.N)
	}
	if _, err := Encode(h); err != nil {
		t.Fatalf("a bounded report does not encode: %v", err)
	}
	unlisted := states[499].Name
	if v, _ := c.ValidFor(unlisted, now); !v {
		t.Error("a name past the list is not valid while the last listed is")
	}
	last := time.Unix(c.Names[len(c.Names)-1].Exp, 0)
	if v, _ := c.ValidFor(unlisted, last); v {
		t.Error("a name past the list is valid after the last listed expired")
	}
}

func TestDecodeDropsMalformedCerts(t *testing.T) {
	h := sample()
	h.SetCerts([]CertState{{Name: "b.example.com", NotAfter: time.Unix(2, 0)}, {Name: "a.example.com", NotAfter: time.Unix(1, 0)}})
	h.ACME, h.ACMEDigest = 1, "0123456789abcdef"
	good, err := Encode(h)
	if err != nil {
		t.Fatal(err)
	}
	for name, bad := range map[string]string{
		"order":  strings.Replace(string(good), `"exp":1`, `"exp":3`, 1),
		"count":  strings.Replace(string(good), `"n":2`, `"n":5`, 1),
		"name":   strings.Replace(string(good), `"a.example.com"`, `"a example"`, 1),
		"digest": strings.Replace(string(good), `"acme_digest":"0123456789abcdef"`, `"acme_digest":"zz"`, 1),
	} {
		if bad == string(good) {
			t.Fatalf("%s: nothing replaced", name)
		}
		got, err := Decode([]byte(bad))
		if err != nil || got.Certs != nil || got.ACMEDigest != "" || got.CertExpiry != h.CertExpiry {
			t.Errorf("%s: %v, certs %+v; want the heartbeat without its certificate report", name, err, got.Certs)
		}
	}
	got, err := Decode(good)
	if err != nil || got.Certs == nil || got.ACME != 1 {
		t.Errorf("good: %v %+v", err, got)
	}
}
