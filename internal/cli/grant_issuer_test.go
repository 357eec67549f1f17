package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dt-cdn/dt/dt"
)

func TestKeygenIssuer(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "issuer")
	r := run(t, "", "keygen", "--issuer", dir)
	if r.code != 0 || r.stdout != filepath.Join(dir, dt.IssuerKeyFile)+"\n"+filepath.Join(dir, dt.IssuerPubKeyFile)+"\n" {
		t.Fatalf("keygen --issuer: exit %d, %q, %s", r.code, r.stdout, r.stderr)
	}
	if fi, err := os.Stat(filepath.Join(dir, dt.IssuerKeyFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("issuer.key: %v, %v", fi, err)
	}
	key, err := dt.LoadIssuerKey(dir)
	if err != nil || key == nil {
		t.Fatalf("LoadIssuerKey: %v, %v", key, err)
	}
	pub, _ := os.ReadFile(filepath.Join(dir, dt.IssuerPubKeyFile))
	if k, err := parsePublisherKey(string(pub)); err != nil || !k.Equal(key.Public()) {
		t.Fatalf("issuer.pub %q does not name issuer.key: %v", pub, err)
	}
	if r := run(t, "", "keygen", "--issuer", dir); r.code == 0 {
		t.Fatal("a second keygen --issuer overwrote the key pair")
	}
	if r := run(t, "", "keygen", "--issuer", "--publisher", t.TempDir()); r.code != 2 {
		t.Fatalf("--issuer with --publisher: exit %d, %s", r.code, r.stderr)
	}
}

func TestGrantCertificates(t *testing.T) {
	keys := keygen(t)
	peer := startPeer(t, keys)
	dir := filepath.Join(t.TempDir(), "issuer")
	if r := run(t, "", "keygen", "--issuer", dir); r.code != 0 {
		t.Fatalf("keygen --issuer: %s", r.stderr)
	}
	raw, _ := os.ReadFile(filepath.Join(dir, dt.IssuerPubKeyFile))
	pub := strings.TrimSpace(string(raw))

	r := run(t, "", "grant", "--keys", keys, "--peer", peer.addr, "--certificates", pub)
	if r.code != 0 || !strings.Contains(r.stdout, "certs/=put,delete") {
		t.Fatalf("grant --certificates: exit %d, %q, %s", r.code, r.stdout, r.stderr)
	}
	r = run(t, "", "grants", "--keys", keys, "--peer", peer.addr, "--json")
	var list []grantJSON
	if err := json.Unmarshal([]byte(r.stdout), &list); r.code != 0 || err != nil || len(list) != 1 || list[0].Key != pub {
		t.Fatalf("grants --json: exit %d, %q (%v), %s", r.code, r.stdout, err, r.stderr)
	}
	want := map[string]string{"acme/": "put,delete", "certs/": "put,delete", "issuer/": "put,delete"}
	for _, rule := range list[0].Scope {
		if want[rule.Prefix] != rule.Ops {
			t.Errorf("rule %s=%s", rule.Prefix, rule.Ops)
		}
		delete(want, rule.Prefix)
	}
	if len(want) != 0 {
		t.Errorf("rules missing: %v", want)
	}
	for _, args := range [][]string{
		{"grant", "--keys", keys, "--peer", peer.addr, "--certificates", "--site", "blog", pub},
		{"grant", "--keys", keys, "--peer", peer.addr, pub},
	} {
		if r := run(t, "", args...); r.code != 2 {
			t.Errorf("%v: exit %d, %s", args, r.code, r.stderr)
		}
	}
}

func TestIssuerNeedsAKey(t *testing.T) {
	keys := keygen(t)
	dir := filepath.Join(t.TempDir(), "plain")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{dt.NetworkKeyFile, dt.MasterPubKeyFile} {
		b, err := os.ReadFile(filepath.Join(keys, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	r := run(t, "", "issuer", "--keys", dir, "--data", t.TempDir(), "--peer", "127.0.0.1:1")
	if r.code != 1 || !strings.Contains(r.stderr, dt.IssuerKeyFile) {
		t.Fatalf("issuer without issuer.key or master.key: exit %d, %s", r.code, r.stderr)
	}
	r = run(t, "", "issuer", "--keys", keys, "--data", t.TempDir(), "--peer", "127.0.0.1:1", "--acme-root", filepath.Join(keys, dt.MasterPubKeyFile))
	if r.code != 2 || !strings.Contains(r.stderr, "--acme-root") {
		t.Fatalf("--acme-root without a certificate: exit %d, %s", r.code, r.stderr)
	}
}
