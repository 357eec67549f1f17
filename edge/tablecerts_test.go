package edge

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dt-cdn/dt/blobs"
	"github.com/dt-cdn/dt/challenge"
	"github.com/dt-cdn/dt/dt"
	"github.com/dt-cdn/dt/heartbeat"
	"github.com/dt-cdn/dt/internal/testkit/promtest"
	"github.com/dt-cdn/dt/internal/testkit/testcert"
	"github.com/dt-cdn/dt/internal/testkit/testnet"
	"github.com/dt-cdn/dt/internal/testkit/wait"
	"github.com/dt-cdn/dt/netcert"
	"github.com/dt-cdn/dt/nodehost"
)

// runEdge runs an edge through Run on loopback (HTTP and HTTPS, port 0), peered with peers,
// and returns what it serves on; the edge stops at the end of the test.
func runEdge(t *testing.T, keys dt.Keys, peers []string, domains ...string) nodehost.Ready {
	t.Helper()
	r, _ := runEdgeIn(t, t.TempDir(), keys, peers, domains...)
	return r
}

// runEdgeIn is runEdge with the edge's data directory given; it also returns a function that
// stops the edge and waits for it (called at the end of the test too).
func runEdgeIn(t *testing.T, dir string, keys dt.Keys, peers []string, domains ...string) (nodehost.Ready, func()) {
	t.Helper()
	node := dt.LocalConfig()
	node.Keys, node.DataDir, node.NoSync, node.Peers = keys, dir, true, peers
	ready := make(chan nodehost.Ready, 1)
	e, err := New(Config{Host: nodehost.Config{Node: node, Ready: func(r nodehost.Ready) error { ready <- r; return nil }},
		HTTP: "127.0.0.1:0", HTTPS: "127.0.0.1:0", Domains: domains, HeartbeatInterval: 100 * time.Millisecond, DrainWait: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	select {
	case r := <-ready:
		return r, stop
	case err := <-done:
		done <- err // for stop
		t.Fatalf("Run returned before the edge served: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("the edge did not report ready")
	}
	return nodehost.Ready{}, stop
}

// beatsOf records the last heartbeat n hears from each node; it returns their reader.
func beatsOf(n *dt.Node) func(dt.NodeID) (heartbeat.Heartbeat, bool) {
	var mu sync.Mutex
	last := map[dt.NodeID]heartbeat.Heartbeat{}
	events := n.Events()
	go func() {
		for ev := range events {
			if h, err := heartbeat.Decode(ev.Object); err == nil && ev.Type == dt.EventMessageReceived {
				mu.Lock()
				last[ev.From] = h
				mu.Unlock()
			}
		}
	}()
	return func(id dt.NodeID) (heartbeat.Heartbeat, bool) {
		mu.Lock()
		defer mu.Unlock()
		h, ok := last[id]
		return h, ok
	}
}

// putCert issues a certificate for names from ca and writes its record through master.
func putCert(t *testing.T, master *dt.Node, network dt.NetworkKey, ca *testcert.CA, validFor time.Duration, names ...string) *x509.Certificate {
	t.Helper()
	chain, key := ca.Issue(t, time.Now().Add(-time.Hour), time.Now().Add(validFor), names...)
	sealer, err := netcert.NewSealer(network)
	if err != nil {
		t.Fatal(err)
	}
	r, err := netcert.NewRecord(chain, key, sealer, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := r.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if err := master.Put(context.Background(), r.TableKey(), b); err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(chain[0])
	return leaf
}

// verifiedLeaf handshakes with addr for name, trusting only pool, and returns the leaf served.
func verifiedLeaf(addr, name string, pool *x509.CertPool) (*x509.Certificate, error) {
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, &tls.Config{ServerName: name, RootCAs: pool})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0], nil
}

// TestEdgeServesTableCertificates writes certificates into the table through a master: an
// HTTPS client trusting only the test CA then reaches the edge under an exact name and under a
// name of a wildcard, a renewal written to the table is served on the next handshake, and a
// name no table certificate covers still gets the edge's own certificate.
func TestEdgeServesTableCertificates(t *testing.T) {
	keys, plain := testnet.Keys(t)
	master := testnet.Node(t, testnet.Options{Keys: keys, Master: true, Listen: true})
	beats := beatsOf(master)
	r := runEdge(t, plain, []string{testnet.Addr(master)})
	ca := testcert.NewCA(t)
	putCert(t, master, keys.Network, ca, 24*time.Hour, "www.example.test")
	putCert(t, master, keys.Network, ca, 24*time.Hour, "*.cdn.example.test", "cdn.example.test")
	for _, name := range []string{"www.example.test", "blog--ams.cdn.example.test", "CDN.example.test"} {
		wait.For(t, 10*time.Second, func() error {
			_, err := verifiedLeaf(r.Serving.HTTPS, name, ca.Pool())
			return err
		})
	}
	renewed := putCert(t, master, keys.Network, ca, 48*time.Hour, "www.example.test")
	wait.For(t, 10*time.Second, func() error {
		leaf, err := verifiedLeaf(r.Serving.HTTPS, "www.example.test", ca.Pool())
		if err == nil && leaf.SerialNumber.Cmp(renewed.SerialNumber) != 0 {
			err = fmt.Errorf("serial %v served, want the renewal's %v", leaf.SerialNumber, renewed.SerialNumber)
		}
		return err
	})
	// The heartbeats say which names the edge holds a valid certificate for: the table's, and
	// its own local certificate for its address.
	wait.For(t, 10*time.Second, func() error {
		h, ok := beats(r.ID)
		if !ok || h.Certs == nil {
			return errors.New("no certificate report heard")
		}
		now := time.Now()
		for host, want := range map[string]bool{"www.example.test": true, "blog.cdn.example.test": true,
			"cdn.example.test": true, "127.0.0.1": true, "other.example.test": false} {
			if got, known := h.Certs.ValidFor(host, now); got != want || !known {
				return fmt.Errorf("ValidFor(%s) = %v, %v in %+v", host, got, known, h.Certs)
			}
		}
		if h.Certs.N != 4 || h.CertExpiry == 0 {
			return fmt.Errorf("report %+v, cert expiry %d", h.Certs, h.CertExpiry)
		}
		return nil
	})
	if _, err := verifiedLeaf(r.Serving.HTTPS, "other.example.test", ca.Pool()); err == nil {
		t.Error("a name no table certificate covers got a certificate of the test CA")
	}
	c, err := tls.Dial("tcp", r.Serving.HTTPS, &tls.Config{ServerName: "other.example.test", InsecureSkipVerify: true})
	if err != nil {
		t.Fatalf("a name no table certificate covers: %v", err)
	}
	c.Close()
}

// TestHTTP01AnsweredByEveryEdge runs three edges (one with ACME domains of its own, whose port
// 80 goes through autocert's handler) and writes an HTTP-01 answer through a master: every edge
// answers it on port 80 for the record's domain, and only for it.
func TestHTTP01AnsweredByEveryEdge(t *testing.T) {
	keys, plain := testnet.Keys(t)
	master := testnet.Node(t, testnet.Options{Keys: keys, Master: true, Listen: true})
	beats := beatsOf(master)
	peers := []string{testnet.Addr(master)}
	edges := []nodehost.Ready{runEdge(t, plain, peers), runEdge(t, plain, peers), runEdge(t, plain, peers, "e3.example.test")}
	const token = "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA"
	rec := challenge.HTTP01{V: challenge.Version, Domain: "www.example.test", Token: token,
		KeyAuthorization: token + ".NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs", Expires: time.Now().Add(time.Hour).Unix()}
	b, err := rec.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if err := master.Put(context.Background(), challenge.HTTP01Key(token), b); err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(addr, host string) (int, string, error) {
		req, _ := http.NewRequest("GET", "http://"+addr+challenge.HTTP01Path+token, nil)
		req.Host = host
		resp, err := client.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body), err
	}
	for i, e := range edges {
		wait.For(t, 10*time.Second, func() error {
			code, body, err := get(e.Serving.HTTP, "www.example.test")
			if err == nil && (code != http.StatusOK || body != rec.KeyAuthorization) {
				err = fmt.Errorf("edge %d: %d %q", i, code, body)
			}
			return err
		})
		if code, body, err := get(e.Serving.HTTP, "other.example.test"); err != nil || body == rec.KeyAuthorization {
			t.Errorf("edge %d answered the challenge for another host: %d %v", i, code, err)
		}
		if code, _, err := get(e.Serving.HTTP, "e3.example.test"); i == 2 && (err != nil || code != http.StatusNotFound) {
			// autocert's own answer for its domain: no such token.
			t.Errorf("edge %d: a token of no record for its own domain: %d %v", i, code, err)
		}
		// What an issuer waits for: the edge's heartbeat names the record it holds.
		want := challenge.Digest([]string{challenge.HTTP01Key(token)})
		wait.For(t, 10*time.Second, func() error {
			if h, _ := beats(e.ID); h.ACME != 1 || h.ACMEDigest != want {
				return fmt.Errorf("edge %d reports %d challenges, digest %q, want 1, %q", i, h.ACME, h.ACMEDigest, want)
			}
			return nil
		})
	}
	if err := master.Delete(context.Background(), challenge.HTTP01Key(token)); err != nil {
		t.Fatal(err)
	}
	wait.For(t, 10*time.Second, func() error {
		if _, body, _ := get(edges[0].Serving.HTTP, "www.example.test"); body == rec.KeyAuthorization {
			return errors.New("the answer stays after its record was removed")
		}
		return nil
	})
}

// TestCertReportBoundedAndCounted gives an edge more names than a heartbeat lists, some without
// a valid certificate: the heartbeat stays within its bounds and encodes, and the gauges count
// every name, the invalid ones and those past the list.
func TestCertReportBoundedAndCounted(t *testing.T) {
	_, plain := testnet.Keys(t)
	node := testnet.Node(t, testnet.Options{Keys: plain})
	testnet.Drain(node)
	store, err := blobs.Open(t.TempDir(), blobs.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	var states []heartbeat.CertState
	for i := range 3 * heartbeat.MaxCertNames {
		s := heartbeat.CertState{Name: fmt.Sprintf("n%03d.example.test", i)}
		if i%10 != 0 {
			s.NotAfter = time.Now().Add(time.Duration(i+1) * time.Hour)
		}
		states = append(states, s, s) // each name twice, as own and table names may be
	}
	reg := prometheus.NewRegistry()
	svc, err := newService(serviceConfig{Node: node, Blobs: store, PublicURL: "https://n000.example.test", Registerer: reg,
		CertStates: func() []heartbeat.CertState { return states }})
	if err != nil {
		t.Fatal(err)
	}
	var h heartbeat.Heartbeat
	h.Seq, h.Time = 1, time.Now().UnixMilli()
	svc.report(&h)
	if _, err := heartbeat.Encode(h); err != nil {
		t.Fatalf("the report does not encode: %v", err)
	}
	want := map[string]float64{"dt_edge_cert_names": 3 * heartbeat.MaxCertNames, "dt_edge_cert_names_invalid": 8,
		"dt_edge_heartbeat_certs_unlisted": float64(h.Certs.More)}
	for name, v := range want {
		if got := promtest.Value(t, reg, name); got != v {
			t.Errorf("%s = %v, want %v", name, got, v)
		}
	}
	if h.Certs.More == 0 || len(h.Certs.Names) > heartbeat.MaxCertNames {
		t.Errorf("report %d listed, %d more", len(h.Certs.Names), h.Certs.More)
	}
}
