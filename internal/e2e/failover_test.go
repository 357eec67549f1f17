package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/dt-cdn/dt/edgeset"
	"github.com/dt-cdn/dt/geoip"
	"github.com/dt-cdn/dt/internal/testkit/wait"
	"github.com/dt-cdn/dt/redirector"
)

func TestMain(m *testing.M) {
	// Pebble's VA starts a task loop that never stops (va.New); it belongs to TestIssuerToEdge's
	// ACME server.
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/letsencrypt/pebble/v2/va.VAImpl.processTasks"))
}

// TestRedirectorAvoidsCrashedEdge publishes to two edges, crashes one, and measures how long the
// redirector keeps sending visitors to it (the target: 6 s with 2 s heartbeats).
func TestRedirectorAvoidsCrashedEdge(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for heartbeats to be missed")
	}
	const beat = 2 * time.Second // the default interval: the figure is the one users get
	n := newTestNetwork(t, beat)
	ams := n.startEdge(amsterdam)
	nyc := n.startEdge(newYork)
	rd := n.startRedirector(redirector.Config{HeartbeatInterval: beat, Code: 302,
		Select: edgeset.SelectOptions{DefaultLocation: &geoip.Record{Lat: 50, Lon: 5, HasLocation: true}}})
	n.publishFiles(map[string]string{"index.html": "<h1>e2e</h1>"}, 2)

	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	target := func() string {
		resp, err := client.Get(rd.url + "/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return strings.TrimSuffix(resp.Header.Get("Location"), "/")
	}
	// The default location (Benelux) is nearest to Amsterdam.
	wait.For(t, 10*time.Second, func() error {
		if got := target(); got != ams.url {
			return fmt.Errorf("visitors go to %q, want Amsterdam %q", got, ams.url)
		}
		return nil
	})

	crashed := time.Now()
	ams.crash()
	var last time.Time
	wait.For(t, 20*time.Second, func() error {
		if got := target(); got == ams.url {
			last = time.Now()
			return fmt.Errorf("still sent to the crashed edge after %s", time.Since(crashed).Round(time.Millisecond))
		} else if got != nyc.url {
			return fmt.Errorf("sent to %q", got)
		}
		return nil
	})
	t.Logf("last redirect to the crashed edge %s after the crash (heartbeats every %s)", last.Sub(crashed).Round(time.Millisecond), beat)
}
