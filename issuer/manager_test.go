package issuer

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"golang.org/x/crypto/acme"

	"github.com/prometheus/client_golang/prometheus"
)

func testManager(now time.Time) *manager {
	return &manager{cfg: Config{RetryBase: time.Minute, RetryMax: 24 * time.Hour, Now: func() time.Time { return now }},
		log: slogTo(discard{}), metrics: newMetrics(prometheus.NewRegistry()), states: map[string]*CertStatus{}}
}

type discard struct{}

func (discard) Write(b []byte) (int, error) { return len(b), nil }

// TestBackoff: each failure in a row waits between half and all of RetryBase doubled per
// failure, capped at RetryMax; a rate limit waits at least its Retry-After; a success resets.
func TestBackoff(t *testing.T) {
	now := time.Unix(1767225600, 0)
	m := testManager(now)
	g := Group{Names: []string{"www.example.com"}}
	for i, want := range []time.Duration{time.Minute, 2 * time.Minute, 4 * time.Minute} {
		m.failed(g, errors.New("validation failed"))
		wait := m.state(g).NextAttempt.Sub(now)
		if wait < want/2 || wait > want {
			t.Errorf("failure %d: next attempt in %v, want %v to %v", i+1, wait, want/2, want)
		}
	}
	for range 40 {
		m.failed(g, errors.New("validation failed"))
	}
	if wait := m.state(g).NextAttempt.Sub(now); wait > 24*time.Hour || wait < 12*time.Hour {
		t.Errorf("after many failures: next attempt in %v, want at most RetryMax and at least half", wait)
	}

	limited := Group{Names: []string{"limited.example.com"}}
	m.failed(limited, &acme.Error{StatusCode: http.StatusTooManyRequests, ProblemType: "urn:ietf:params:acme:error:rateLimited",
		Header: http.Header{"Retry-After": []string{"7200"}}})
	if wait := m.state(limited).NextAttempt.Sub(now); wait < 2*time.Hour {
		t.Errorf("rate limited with Retry-After 7200: next attempt in %v", wait)
	}
	if m.due(t.Context(), limited) {
		t.Error("a name waiting out its backoff is due")
	}
}
