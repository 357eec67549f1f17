package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dt-cdn/dt/edge"
	"github.com/dt-cdn/dt/edgeset"
	"github.com/dt-cdn/dt/internal/testkit/testcert"
	"github.com/dt-cdn/dt/internal/testkit/testnet"
	"github.com/dt-cdn/dt/internal/testkit/wait"
	"github.com/dt-cdn/dt/netcert"
	"github.com/dt-cdn/dt/redirector"
)

// TestEdgeWithoutCertificateGetsNoVisitors runs two HTTPS edges and a redirector: one edge with
// its local certificate, one with an ACME domain it has no certificate for yet (its CA is
// unreachable). The redirector sends every visitor to the first, /explain naming the name the
// second lacks; once a wildcard certificate covering the second's name is written to the
// table, the second serves it and gets visitors too, without a restart.
func TestEdgeWithoutCertificateGetsNoVisitors(t *testing.T) {
	const beat = 200 * time.Millisecond
	n := newTestNetwork(t, beat)
	ams := startEdgeNode(t, n.plain, n.peer, beat, amsterdam, func(c *edge.Config) {
		c.HTTPS, c.PublicURL = "127.0.0.1:0", "https://ams.cdn.example.test"
	})
	nyc := startEdgeNode(t, n.plain, n.peer, beat, newYork, func(c *edge.Config) {
		c.HTTPS, c.Domains, c.ACMEDirectory = "127.0.0.1:0", []string{"nyc.cdn.example.test"}, "https://127.0.0.1:1/directory"
	})
	rd := n.startRedirector(redirector.Config{HeartbeatInterval: beat, Code: 302})
	n.publishFiles(map[string]string{"index.html": "<h1>certs</h1>"}, 2)

	// The explanation as /explain writes it (reasons as words).
	type explanation struct {
		Candidates []struct {
			Node string `json:"node"`
		} `json:"candidates"`
		Excluded []struct {
			Node   string `json:"node"`
			Reason string `json:"reason"`
			Detail string `json:"detail"`
		} `json:"excluded"`
	}
	explain := func() (explanation, error) {
		var x explanation
		resp, err := http.Get(rd.admin + "/explain")
		if err != nil {
			return x, err
		}
		defer resp.Body.Close()
		return x, json.NewDecoder(resp.Body).Decode(&x)
	}
	excluded := func(x explanation, node string) (reason, detail string) {
		for _, e := range x.Excluded {
			if e.Node == node {
				return e.Reason, e.Detail
			}
		}
		return "", ""
	}
	wait.For(t, 20*time.Second, func() error {
		x, err := explain()
		if err != nil {
			return err
		}
		reason, detail := excluded(x, nyc.id.String())
		if reason != edgeset.ExcludeCertificate.String() || detail != "no valid certificate for nyc.cdn.example.test" {
			return fmt.Errorf("the edge without a certificate: excluded for %q (%q)", reason, detail)
		}
		if len(x.Candidates) != 1 || x.Candidates[0].Node != ams.id.String() {
			return fmt.Errorf("candidates %+v", x.Candidates)
		}
		return nil
	})
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for range 10 {
		resp, err := client.Get(rd.url + "/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if loc := resp.Header.Get("Location"); !strings.HasPrefix(loc, "https://ams.cdn.example.test/") {
			t.Fatalf("a visitor sent to %q", loc)
		}
	}

	ca := testcert.NewCA(t)
	chain, key := ca.Issue(t, time.Now().Add(-time.Hour), time.Now().Add(90*24*time.Hour), "*.cdn.example.test", "cdn.example.test")
	sealer, err := netcert.NewSealer(n.keys.Network)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := netcert.NewRecord(chain, key, sealer, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	body, err := rec.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	master := testnet.Node(t, testnet.Options{Keys: n.keys, Master: true, Peers: []string{n.peer}})
	testnet.Drain(master)
	if err := master.Put(context.Background(), rec.TableKey(), body); err != nil {
		t.Fatal(err)
	}
	wait.For(t, 20*time.Second, func() error {
		x, err := explain()
		if err != nil {
			return err
		}
		if len(x.Candidates) != 2 {
			return fmt.Errorf("candidates %+v, excluded %+v", x.Candidates, x.Excluded)
		}
		return nil
	})
}
