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
