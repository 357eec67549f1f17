// Package promtest reads metrics from a Prometheus registry in tests, by name and labels, as
// a scrape would see them.
package promtest

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// Sum returns the sum of the values of the counters and gauges named name in g whose labels
// include every "label=value" of match; 0 when there are none, as for a vector none of whose
// label sets has been used yet.
func Sum(t testing.TB, g prometheus.Gatherer, name string, match ...string) float64 {
	t.Helper()
	sum, _ := gather(t, g, name, match)
	return sum
}

// Value is Sum for a metric that must be there: it fails the test when g has no metric name
// with those labels (a misspelt name would otherwise read as 0).
func Value(t testing.TB, g prometheus.Gatherer, name string, match ...string) float64 {
	t.Helper()
	sum, found := gather(t, g, name, match)
	if !found {
		t.Fatalf("no metric %s%q", name, match)
	}
	return sum
}

func gather(t testing.TB, g prometheus.Gatherer, name string, match []string) (sum float64, found bool) {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			for _, want := range match {
				has := false
				for _, lp := range m.GetLabel() {
					if lp.GetName()+"="+lp.GetValue() == want {
						has = true
					}
				}
				if !has {
					continue metrics
				}
			}
			found = true
			sum += m.GetGauge().GetValue() + m.GetCounter().GetValue()
		}
	}
	return sum, found
}
