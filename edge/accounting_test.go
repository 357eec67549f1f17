package edge

import (
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dt-cdn/dt/internal/testkit/promtest"
	"github.com/dt-cdn/dt/static"
)

// TestAccountingMetrics: responses of every kind, counted from several goroutines at once, land
// under their status and coding, the usual ones through the cached counters and the rest (an
// unknown coding, a status out of range) through the vector, and the load report counts them.
func TestAccountingMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	a, err := NewAccounting(AccountingConfig{Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	responses := []static.ResponseInfo{
		{Status: 200, Encoding: "gzip", Bytes: 10, Duration: time.Millisecond},
		{Status: 200, Bytes: 5},
		{Status: 304, Encoding: "br"},
		{Status: 404, Encoding: "zstd", Bytes: 1},
		{Status: 503, Bytes: 2},
		{Status: 200, Encoding: "compress", Bytes: 3},
		{Status: 999, Bytes: 4},
	}
	const workers, rounds = 4, 50
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range rounds {
				for _, ri := range responses {
					a.ObserveResponse(ri)
				}
			}
		})
	}
	wg.Wait()
	const n = workers * rounds
	for _, c := range []struct {
		labels []string
		want   float64
	}{
		{[]string{"code=200", "encoding=gzip"}, n},
		{[]string{"code=200", "encoding=identity"}, n},
		{[]string{"code=304", "encoding=br"}, n},
		{[]string{"code=404", "encoding=zstd"}, n},
		{[]string{"code=503", "encoding=identity"}, n},
		{[]string{"code=200", "encoding=compress"}, n},
		{[]string{"code=999", "encoding=identity"}, n},
	} {
		if got := promtest.Value(t, reg, "dt_edge_requests_total", c.labels...); got != c.want {
			t.Errorf("dt_edge_requests_total%v = %v, want %v", c.labels, got, c.want)
		}
	}
	if got := promtest.Value(t, reg, "dt_edge_response_bytes_total"); got != 25*n {
		t.Errorf("dt_edge_response_bytes_total = %v, want %v", got, 25*n)
	}
	if got := a.load.requests.Load(); got != int64(len(responses))*n {
		t.Errorf("load counted %d requests, want %d", got, len(responses)*n)
	}
	if got := a.load.errors5xx.Load(); got != 2*n {
		t.Errorf("load counted %d 5xx, want %d", got, 2*n)
	}
}

// BenchmarkAccountingMetrics measures what a response costs the metrics.
func BenchmarkAccountingMetrics(b *testing.B) {
	a, err := NewAccounting(AccountingConfig{Registerer: prometheus.NewRegistry()})
	if err != nil {
		b.Fatal(err)
	}
	ri := static.ResponseInfo{Status: 200, Encoding: "gzip", Bytes: 1000, Duration: time.Millisecond}
	b.ReportAllocs()
	for b.Loop() {
		a.ObserveResponse(ri)
	}
}
