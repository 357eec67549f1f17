package promtest

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestSumAndValue(t *testing.T) {
	reg := prometheus.NewRegistry()
	refused := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "refused_total"}, []string{"reason", "family"})
	open := prometheus.NewGauge(prometheus.GaugeOpts{Name: "open"})
	reg.MustRegister(refused, open)
	if got := Sum(t, reg, "refused_total"); got != 0 {
		t.Errorf("Sum of an unused vector: %v, want 0", got)
	}
	refused.WithLabelValues("full", "ipv4").Add(2)
	refused.WithLabelValues("full", "ipv6").Add(3)
	refused.WithLabelValues("blocked", "ipv4").Add(5)
	open.Set(4)
	for _, tc := range []struct {
		name  string
		match []string
		want  float64
	}{
		{"refused_total", nil, 10},
		{"refused_total", []string{"reason=full"}, 5},
		{"refused_total", []string{"reason=full", "family=ipv6"}, 3},
		{"refused_total", []string{"reason=other"}, 0},
		{"open", nil, 4},
	} {
		if got := Sum(t, reg, tc.name, tc.match...); got != tc.want {
			t.Errorf("Sum(%s, %q) = %v, want %v", tc.name, tc.match, got, tc.want)
		}
	}
	if got := Value(t, reg, "refused_total", "reason=blocked"); got != 5 {
		t.Errorf("Value(refused_total, reason=blocked) = %v, want 5", got)
	}
}
