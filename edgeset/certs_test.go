package edgeset_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/dt-cdn/dt/edgeset"
	"github.com/dt-cdn/dt/heartbeat"
	"github.com/dt-cdn/dt/internal/testkit/fleet"
)

// reporting returns an edit giving an edge a certificate report of states (valid until
// now+d, or none for d = 0).
func reporting(states map[string]time.Duration) func(*heartbeat.Edge) {
	return func(e *heartbeat.Edge) {
		var cs []heartbeat.CertState
		for name, d := range states {
			s := heartbeat.CertState{Name: name}
			if d != 0 {
				s.NotAfter = fleet.Now.Add(d)
			}
			cs = append(cs, s)
		}
		e.Last.SetCerts(cs)
	}
}

// TestSelectByCertificateName: an edge that reports its names gets visitors only for a name it
// holds a valid certificate for (its own host for the redirector, the answered name for GeoDNS,
// a wildcard of the parent counting); an edge of an earlier release is judged by CertExpiry;
// /explain names the name.
func TestSelectByCertificateName(t *testing.T) {
	day := 24 * time.Hour
	edges := []heartbeat.Edge{
		fleet.With(fleet.Live("ams", fleet.Amsterdam), reporting(map[string]time.Duration{"ams.example.net": 30 * day, "*.cdn.example.net": 30 * day})),
		fleet.With(fleet.Live("fra", fleet.Frankfurt), reporting(map[string]time.Duration{"fra.example.net": 0, "*.cdn.example.net": -day})),
		fleet.With(fleet.Live("nyc", fleet.NewYork), reporting(map[string]time.Duration{"nyc.example.net": 30 * day, "www.example.org": 30 * day})),
		fleet.Live("tyo", fleet.Tokyo), // an earlier release: CertExpiry alone
	}
	for _, c := range []struct {
		certName string
		eligible string
	}{
		{"", "ams,nyc,tyo"},
		{"www.example.org", "nyc,tyo"},
		{"blog--ams.cdn.example.net", "ams,tyo"},
		{"WWW.Example.ORG.", "nyc,tyo"},
	} {
		d := edgeset.Select(edges, edgeset.Client{}, fleet.Current, fleet.Now, edgeset.SelectOptions{CertName: c.certName})
		var got []string
		for _, cand := range d.Candidates {
			got = append(got, cand.Edge.Node)
		}
		if strings.Join(got, ",") != c.eligible {
			t.Errorf("CertName %q: eligible %v, want %s", c.certName, got, c.eligible)
		}
		for _, x := range d.Excluded {
			if x.Reason != edgeset.ExcludeCertificate {
				t.Errorf("CertName %q: %s excluded for %v", c.certName, x.Edge.Node, x.Reason)
			}
		}
	}
	d := edgeset.Select(edges, edgeset.Client{}, fleet.Current, fleet.Now, edgeset.SelectOptions{})
	b, _ := json.Marshal(edgeset.Explain(d, edgeset.Client{}, fleet.Current, fleet.Now))
	if !strings.Contains(string(b), `"reason":"certificate expired or absent","detail":"no valid certificate for fra.example.net"`) {
		t.Errorf("explanation lacks the certificate's name: %s", b)
	}
}
