package heartbeat

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func sample() Heartbeat {
	return Heartbeat{
		Seq: 7, Time: 1_700_000_000_000, Version: "dt 0.1",
		PublicURL: "https://e1.example.com",
		IPv4:      netip.MustParseAddr("192.0.2.10"),
		IPv6:      netip.MustParseAddr("2001:db8::10"),
		Location:  &Location{Lat: 52.37, Lon: 4.9, Country: "NL", Continent: "EU"},
		Deploy:    "3f9a", Synced: true, Objects: 120, Bytes: 1 << 20, DiskFree: 1 << 30,
		Load:       Load{CPU: 0.25, RequestsPS: 120, BytesPS: 1e6, ErrorRate5xx: 0.01, Connections: 9},
		CertExpiry: 1_800_000_000_000,
	}
}

func TestRoundTrip(t *testing.T) {
	b, err := Encode(sample())
	if err != nil {
		t.Fatal(err)
	}
	got, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	want := sample()
	want.Type, want.V = Type, Version
	gb, _ := json.Marshal(got)
	wb, _ := json.Marshal(want)
	if !bytes.Equal(gb, wb) {
		t.Fatalf("round trip:\n%s\n%s", gb, wb)
	}
	if len(b) > 600 {
		t.Errorf("a full heartbeat is %d bytes", len(b))
	}
}

func TestDecodeRejects(t *testing.T) {
	mutate := map[string]func(*Heartbeat){
		"seq 0":          func(h *Heartbeat) { h.Seq = 0 },
		"javascript url": func(h *Heartbeat) { h.PublicURL = "javascript:alert(1)" },
		"url with path?": func(h *Heartbeat) { h.PublicURL = "https://e1.example.com/?x=1" },
		"url with user":  func(h *Heartbeat) { h.PublicURL = "https://u:p@e1.example.com" },
		"no host":        func(h *Heartbeat) { h.PublicURL = "https://" },
		"v6 in ipv4":     func(h *Heartbeat) { h.IPv4 = netip.MustParseAddr("2001:db8::1") },
		"v4 in ipv6":     func(h *Heartbeat) { h.IPv6 = netip.MustParseAddr("::ffff:192.0.2.1") },
		"latitude":       func(h *Heartbeat) { h.Location.Lat = 91 },
		"longitude NaN":  func(h *Heartbeat) { h.Location.Lon = math.NaN() },
		"country":        func(h *Heartbeat) { h.Location.Country = "NLD" },
		"negative rps":   func(h *Heartbeat) { h.Load.RequestsPS = -1 },
		"error rate > 1": func(h *Heartbeat) { h.Load.ErrorRate5xx = 1.5 },
		"infinite cpu":   func(h *Heartbeat) { h.Load.CPU = math.Inf(1) },
		"negative bytes": func(h *Heartbeat) { h.Bytes = -1 },
		"long deploy id": func(h *Heartbeat) { h.Deploy = string(make([]byte, 200)) },
	}
	for name, m := range mutate {
		h := sample()
		m(&h)
		if _, err := Encode(h); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: Encode gave %v, want ErrInvalid", name, err)
		}
		h.Type, h.V = Type, Version
		raw, err := json.Marshal(h)
		if err != nil {
			continue // NaN and Inf do not even encode as JSON
		}
		if _, err := Decode(raw); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: Decode gave %v, want ErrInvalid", name, err)
		}
	}
	for _, raw := range []string{`{"type":"other"}`, `"text"`, `[1,2]`, `{}`, ``} {
		if _, err := Decode([]byte(raw)); !errors.Is(err, ErrNotHeartbeat) {
			t.Errorf("Decode(%s) = %v, want ErrNotHeartbeat", raw, err)
		}
	}
	if _, err := Decode([]byte(`{"type":"heartbeat","v":2,"seq":1,"url":"https://x"}`)); !errors.Is(err, ErrInvalid) {
		t.Errorf("another version: %v", err)
	}
	if _, err := Decode([]byte(`{"type":"heartbeat","v":1,"seq":"one"}`)); !errors.Is(err, ErrInvalid) {
		t.Errorf("wrong field type: %v", err)
	}
}

// FuzzDecode: whatever the payload, Decode either refuses it or returns a heartbeat that encodes
// again and decodes to the same value.
func FuzzDecode(f *testing.F) {
	b, _ := Encode(sample())
	f.Add(b)
	f.Add([]byte(`{"type":"heartbeat","v":1,"seq":1,"url":"http://[::1]:8080"}`))
	f.Add([]byte(`{"type":"heartbeat"}`))
	withSites := sample()
	withSites.SetSites([]SiteState{{Site: "blog", Current: "ab"}, {Site: "default"}})
	b, _ = Encode(withSites)
	f.Add(b)
	withCerts := sample()
	withCerts.SetCerts([]CertState{{Name: "*.cdn.example.com", NotAfter: time.Unix(1_800_000_000, 0)}, {Name: "e1.example.com"}})
	withCerts.ACME, withCerts.ACMEDigest = 2, "0123456789abcdef"
	b, _ = Encode(withCerts)
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := Decode(b)
		if err != nil {
			if !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrNotHeartbeat) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if h.Sites < 0 || h.LaggingMore < 0 || len(h.Lagging) > MaxLagging || h.SitesDigest == "" && h.CurrentDigest != "" {
			t.Fatalf("per-site fields out of bounds: %+v", h)
		}
		for i, l := range h.Lagging {
			if !isSiteName(l.Site) || len(l.Deploy) > DeployPrefixLen || i > 0 && h.Lagging[i-1].Site >= l.Site {
				t.Fatalf("lagging entry %d: %+v", i, l)
			}
		}
		again, err := Encode(h)
		if err != nil {
			t.Fatalf("a decoded heartbeat does not encode: %v", err)
		}
		h2, err := Decode(again)
		if err != nil {
			t.Fatalf("re-encoded heartbeat does not decode: %v", err)
		}
		x, _ := json.Marshal(h)
		y, _ := json.Marshal(h2)
		if !bytes.Equal(x, y) {
			t.Fatalf("not stable:\n%s\n%s", x, y)
		}
	})
}

// TestNameValidated: an edge's name is shown to people: bounded, valid UTF-8, no control
// characters.
func TestNameValidated(t *testing.T) {
	base := Heartbeat{Type: Type, V: Version, Seq: 1, Time: 1, PublicURL: "https://e1.example.com"}
	for name, ok := range map[string]bool{
		"":                        true,
		"ams-1":                   true,
		"Zürich Ost":              true,
		strings.Repeat("x", 64):   true,
		strings.Repeat("x", 65):   false,
		"bell\a":                  false,
		"line\nbreak":             false,
		string([]byte{0xff, 'a'}): false,
	} {
		h := base
		h.Name = name
		b, err := Encode(h)
		if err == nil {
			_, err = Decode(b)
		}
		if (err == nil) != ok {
			t.Errorf("name %q: %v, want ok=%v", name, err, ok)
		}
	}
}
