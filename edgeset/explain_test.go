package edgeset_test

import (
	"encoding/json"
	"net/netip"
	"strings"
	"testing"

	"github.com/dt-cdn/dt/edgeset"
	"github.com/dt-cdn/dt/internal/testkit/fleet"
)

// TestExplainTellsTheDecision checks that an explanation holds the decision as made: the chosen
// edge among the candidates, every excluded edge with its reason and a detail, and JSON that
// spells reasons, matches and bases as words.
func TestExplainTellsTheDecision(t *testing.T) {
	geo := fleet.GeoDB(t)
	ip := netip.MustParseAddr("145.100.1.1")
	rec, err := geo.Lookup(ip)
	if err != nil {
		t.Fatal(err)
	}
	c := edgeset.Client{IP: ip, Geo: rec}
	d := edgeset.Select(fleet.Edges(), c, fleet.Current, fleet.Now, edgeset.SelectOptions{Weights: fleet.Weights()})
	x := edgeset.Explain(d, c, fleet.Current, fleet.Now)
	if x.Chosen == nil || x.Chosen != &x.Candidates[0] || x.Chosen.Node != "ams" || x.Chosen.URL != "https://ams.example.net" {
		t.Fatalf("chosen %+v of %+v", x.Chosen, x.Candidates)
	}
	if x.Client.IP != ip || x.Client.Geo.Country != "NL" || x.Deploy != fleet.Current || x.Basis != edgeset.BasisLocation {
		t.Errorf("header: %+v", x)
	}
	want := fleet.Excluded()
	for _, ex := range x.Excluded {
		if ex.Reason != want[ex.Node] || ex.Detail == "" && ex.Reason != edgeset.ExcludeDraining {
			t.Errorf("%s excluded for %v (%q), want %v", ex.Node, ex.Reason, ex.Detail, want[ex.Node])
		}
		delete(want, ex.Node)
	}
	if len(want) != 0 {
		t.Errorf("not listed as excluded: %v", want)
	}
	b, err := json.Marshal(x)
	if err != nil {
		t.Fatal(err)
	}
	for _, frag := range []string{`"basis":"client location"`, `"match":"same country"`, `"reason":"stale heartbeat"`,
		`"detail":"last heartbeat 1m0s ago"`, `"detail":"dead: probe failed"`} {
		if !strings.Contains(string(b), frag) {
			t.Errorf("JSON lacks %s: %s", frag, b)
		}
	}
}
