package redirector

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/dt-cdn/dt/dt"
	"github.com/dt-cdn/dt/internal/testkit/testcert"
	"github.com/dt-cdn/dt/internal/testkit/testnet"
	"github.com/dt-cdn/dt/internal/testkit/wait"
	"github.com/dt-cdn/dt/netcert"
	"github.com/dt-cdn/dt/nodehost"
)

// TestHTTPSServesTableCertificates: a certificate the master writes to the table reaches the
// redirector, whose HTTPS listener then serves it, over a real socket, to a client that trusts
// only its CA, for every name under the wildcard; a name no table certificate covers still gets
// the redirector's own (local) certificate.
func TestHTTPSServesTableCertificates(t *testing.T) {
	keys, plain := testnet.Keys(t)
	master := testnet.Node(t, testnet.Options{Keys: keys, Master: true, Listen: true})
	testnet.Drain(master)
	ncfg := dt.LocalConfig()
	ncfg.Keys, ncfg.DataDir, ncfg.NoSync, ncfg.Peers = plain, t.TempDir(), true, []string{testnet.Addr(master)}
	ready := make(chan nodehost.Ready, 1)
	r, err := New(Config{
		Host: nodehost.Config{Node: ncfg, Logger: slog.New(slog.DiscardHandler),
			Ready: func(r nodehost.Ready) error { ready <- r; return nil }},
		HTTPS: "127.0.0.1:0",
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	var addr string
	select {
	case rd := <-ready:
		addr = rd.Serving.HTTPS
	case err := <-done:
		t.Fatalf("Run returned before serving: %v", err)
	}

	ca := testcert.NewCA(t)
	sealer, err := netcert.NewSealer(keys.Network)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	chain, key := ca.Issue(t, now.Add(-time.Hour), now.Add(24*time.Hour), "*.cdn.example.test", "cdn.example.test")
	rec, err := netcert.NewRecord(chain, key, sealer, now.Add(12*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := rec.Marshal()
	if err := master.Put(ctx, rec.TableKey(), b); err != nil {
		t.Fatal(err)
	}

	handshake := func(name string) error {
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr,
			&tls.Config{ServerName: name, RootCAs: ca.Pool()})
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		return conn.Close()
	}
	wait.For(t, 20*time.Second, func() error { return handshake("shop.cdn.example.test") })
	if err := handshake("cdn.example.test"); err != nil {
		t.Error(err)
	}
	conn, err := tls.Dial("tcp", addr, &tls.Config{ServerName: "elsewhere.test", InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if leaf := conn.ConnectionState().PeerCertificates[0]; slices.Contains(leaf.DNSNames, "*.cdn.example.test") {
		t.Errorf("a name outside the table got the table's certificate: %v", leaf.DNSNames)
	}
	if err := handshake("elsewhere.test"); err == nil {
		t.Error("a name outside the table verified against the table's CA")
	}
}
