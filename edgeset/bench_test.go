package edgeset_test

import (
	"testing"

	"github.com/dt-cdn/dt/edgeset"
	"github.com/dt-cdn/dt/edgeset/edgesettest"
)

func BenchmarkSelect(b *testing.B) {
	edges := edgesettest.Fleet()
	opts := edgeset.SelectOptions{Weights: edgesettest.Weights()}
	b.ReportAllocs()
	for b.Loop() {
		edgeset.Select(edges, liege, edgesettest.Current, edgesettest.Now, opts)
	}
}
