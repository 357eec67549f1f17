package edgeset_test

import (
	"testing"

	"github.com/dt-cdn/dt/edgeset"
	"github.com/dt-cdn/dt/internal/testkit/fleet"
)

func BenchmarkSelect(b *testing.B) {
	edges := fleet.Edges()
	opts := edgeset.SelectOptions{Weights: fleet.Weights()}
	b.ReportAllocs()
	for b.Loop() {
		edgeset.Select(edges, liege, fleet.Current, fleet.Now, opts)
	}
}

// BenchmarkSelectSite100x20 is one choice for one of 100 sites among 20 edges, some lagging.
func BenchmarkSelectSite100x20(b *testing.B) {
	v, sites := HundredSites()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		edgeset.SelectSite(v, sites[i%len(sites)], liege, fleet.Now, edgeset.SelectOptions{})
		i++
	}
}
