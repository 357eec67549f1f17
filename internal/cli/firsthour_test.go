package cli

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dt-cdn/dt/dt"
	"github.com/dt-cdn/dt/publish"
)

// deadAddr returns a loopback address where nothing listens: a port bound and released.
func deadAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// peerCommands are the commands that dial peers, each with the arguments it needs besides
// --keys, --peer and --timeout.
func peerCommands(t *testing.T) map[string][]string {
	site := t.TempDir()
	if err := os.WriteFile(filepath.Join(site, "index.html"), []byte("hi"), 0o644); err != nil {
		t.Fatal(err)
	}
	zone := writeFile(t, "example.com.zone", "$ORIGIN example.com.\n@ 60 SOA ns1 hm 1 2 3 4 5\n@ 60 NS ns1\nns1 60 A 192.0.2.1\n")
	return map[string][]string{
		"add":         {"-"},
		"remove":      {strings.Repeat("ab", 32)},
		"send":        {"{}"},
		"publish":     {site},
		"deploys":     {},
		"rollback":    {},
		"dns-publish": {zone},
		"dns-records": {},
		"resolve":     {"--local=false", "example.com"},
	}
}

// TestUnreachablePeerSaysWhy runs every command that dials peers against a port where nothing
// listens, a name that cannot resolve and an address without a port: each fails within its
// --timeout (the refused port and the unknown name well before it), exits non-zero, names the
// cause for the peer, and prints nothing on stdout.
func TestUnreachablePeerSaysWhy(t *testing.T) {
	keys := keygen(t)
	cases := []struct {
		name, peer string
		code       int
		want       []string
	}{
		{"refused", deadAddr(t), 1, []string{"connection refused", "--listen port"}},
		{"no such host", "nosuch.invalid:7000", 1, []string{"no such host", `"nosuch.invalid" does not resolve`}},
		{"no port", "example.com", 2, []string{`"example.com" has no port`, "example.com:7000"}},
	}
	for name, extra := range peerCommands(t) {
		for _, c := range cases {
			t.Run(name+"/"+c.name, func(t *testing.T) {
				t.Parallel()
				args := append([]string{name, "--keys", keys, "--peer", c.peer, "--timeout", "20s"}, extra...)
				began := time.Now()
				r := run(t, "{}", args...)
				took := time.Since(began)
				if r.code != c.code {
					t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", r.code, c.code, r.stdout, r.stderr)
				}
				for _, w := range c.want {
					if !strings.Contains(r.stderr, w) {
						t.Errorf("stderr lacks %q:\n%s", w, r.stderr)
					}
				}
				if r.stdout != "" {
					t.Errorf("stdout not empty on failure: %q", r.stdout)
				}
				// The refused port and the unknown name are final: no waiting out --timeout.
				if took > 15*time.Second {
					t.Errorf("took %s with --timeout 20s", took)
				}
				if msg := strings.TrimPrefix(r.stderr, "dt "+name+": "); strings.Contains(msg, ": dt: ") || strings.Contains(msg, ": publish: ") {
					t.Errorf("stuttered prefix:\n%s", r.stderr)
				}
			})
		}
	}
}

// A peer that accepts connections but never answers the handshake: the command gives up at
// --timeout and says it timed out.
func TestSilentPeerTimesOut(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	defer func() {
		ln.Close()
		<-done
	}()
	go func() {
		defer close(done)
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	keys := keygen(t)
	for _, cmd := range []string{"send", "deploys"} {
		began := time.Now()
		r := run(t, "", cmd, "--keys", keys, "--peer", ln.Addr().String(), "--timeout", "2s", "{}")
		if cmd == "deploys" {
			r = run(t, "", cmd, "--keys", keys, "--peer", ln.Addr().String(), "--timeout", "2s")
		}
		if r.code != 1 || !strings.Contains(r.stderr, "gave up after 2s (--timeout)") || r.stdout != "" {
			t.Fatalf("%s: exit %d\nstdout: %s\nstderr: %s", cmd, r.code, r.stdout, r.stderr)
		}
		if took := time.Since(began); took > 30*time.Second {
			t.Errorf("%s took %s with --timeout 2s", cmd, took)
		}
	}
}

// TestWrongNetworkKey runs publish and add with another network's keys against a node on
// loopback: both fail at once, saying the handshake was refused and why that may be; the right
// keys from the same address work right after (one failed handshake per run does not get the
// address blocked).
func TestWrongNetworkKey(t *testing.T) {
	keys := keygen(t)
	peer := startPeer(t, keys)
	wrong := keygen(t)
	site := t.TempDir()
	if err := os.WriteFile(filepath.Join(site, "index.html"), []byte("hi"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"publish", site}, {"add", "-"}} {
		r := run(t, "{}", append([]string{args[0], "--keys", wrong, "--peer", peer.addr, "--timeout", "20s"}, args[1:]...)...)
		if r.code != 1 || r.stdout != "" {
			t.Fatalf("%s with the wrong key: exit %d\nstdout: %s\nstderr: %s", args[0], r.code, r.stdout, r.stderr)
		}
		for _, w := range []string{"refused the handshake", "network.key", "dt guard unblock"} {
			if !strings.Contains(r.stderr, w) {
				t.Errorf("%s: stderr lacks %q:\n%s", args[0], w, r.stderr)
			}
		}
	}
	r := run(t, "", "publish", "--keys", keys, "--peer", peer.addr, "--timeout", "1s", site)
	if r.code != exitNoEdges {
		t.Fatalf("publish with the right key: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := run(t, "{}", "add", "--keys", keys, "--peer", peer.addr, "--timeout", "20s", "-"); r.code != 0 {
		t.Fatalf("add with the right key: exit %d\n%s", r.code, r.stderr)
	}
}

// TestPublishChecksLocallyFirst: a missing directory, a file for a directory and a broken
// _redirects fail before any peer is dialed (the peer here would hang), with nothing on stdout;
// --dry-run needs no master key.
func TestPublishChecksLocallyFirst(t *testing.T) {
	keys := keygen(t)
	file := writeFile(t, "index.html", "hi")
	broken := t.TempDir()
	os.WriteFile(filepath.Join(broken, "_redirects"), []byte("/a /b 999\n"), 0o644)
	// A name that would take the whole --timeout to fail, were it dialed.
	hang := "192.0.2.1:7000"
	for _, c := range []struct {
		dir, want string
	}{
		{filepath.Join(t.TempDir(), "missing"), "does not exist"},
		{file, "is not a directory"},
		{broken, "_redirects:1"},
	} {
		began := time.Now()
		r := run(t, "", "publish", "--keys", keys, "--peer", hang, "--timeout", "1m", c.dir)
		if r.code != 1 || r.stdout != "" || !strings.Contains(r.stderr, c.want) {
			t.Errorf("publish %s: exit %d\nstdout: %q\nstderr: %s", c.dir, r.code, r.stdout, r.stderr)
		}
		if took := time.Since(began); took > 20*time.Second {
			t.Errorf("publish %s took %s: it dialed first", c.dir, took)
		}
	}

	peer := startPeer(t, keys)
	noMaster := t.TempDir()
	for _, name := range []string{dt.NetworkKeyFile, dt.MasterPubKeyFile} {
		b, err := os.ReadFile(filepath.Join(keys, name))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(noMaster, name), b, 0o600)
	}
	site := filepath.Dir(file)
	r := run(t, "", "publish", "--dry-run", "--keys", noMaster, "--peer", peer.addr, "--timeout", "20s", site)
	if r.code != 0 || !strings.Contains(r.stdout, "dry run: 1 added") {
		t.Fatalf("dry run without master.key: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = run(t, "", "publish", "--keys", noMaster, "--peer", peer.addr, "--timeout", "20s", site)
	if r.code != 1 || r.stdout != "" || !strings.Contains(r.stderr, "master.key") {
		t.Fatalf("publish without master.key: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// TestRepublish: deploys with none says so; publishing the same site again makes no deploy and
// keeps the --keep slots for deploys worth rolling back to; the settings (--clean-urls, --spa)
// stay with the site across a republish that does not name them.
func TestRepublish(t *testing.T) {
	keys := keygen(t)
	peer := startPeer(t, keys)
	dir := t.TempDir()
	write := func(content string) {
		if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// A publish to a network with no edges waits the whole timeout for one to appear, so it is
	// short; but not so short that the first sync misses it on a loaded machine (1 s did).
	common := []string{"--keys", keys, "--peer", peer.addr, "--timeout", "3s"}
	deploys := func() []publish.DeployInfo {
		t.Helper()
		r := run(t, "", append([]string{"deploys", "--json"}, common...)...)
		var list []publish.DeployInfo
		if err := json.Unmarshal([]byte(r.stdout), &list); r.code != 0 || err != nil {
			t.Fatalf("deploys: exit %d %v\n%s%s", r.code, err, r.stdout, r.stderr)
		}
		return list
	}
	if r := run(t, "", append([]string{"deploys"}, common...)...); r.code != 0 || !strings.Contains(r.stderr, "no deploys yet") || r.stdout != "" {
		t.Fatalf("deploys with none: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	write("one")
	if r := run(t, "", append(append([]string{"publish", "--clean-urls", "--keep", "2"}, common...), dir)...); r.code != exitNoEdges {
		t.Fatalf("first publish: exit %d\n%s", r.code, r.stderr)
	}
	write("two")
	if r := run(t, "", append(append([]string{"publish", "--keep", "2"}, common...), dir)...); r.code != exitNoEdges || !strings.Contains(r.stdout, "--clean-urls=true") {
		t.Fatalf("second publish: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	list := deploys()
	if len(list) != 2 || !list[0].CleanURLs || !list[1].CleanURLs {
		t.Fatalf("after a republish without --clean-urls: %+v", list)
	}
	// The same content again, twice: with --keep 2, a new deploy would collect the first one.
	for range 2 {
		r := run(t, "", append(append([]string{"publish", "--keep", "2"}, common...), dir)...)
		if r.code != exitNoEdges || !strings.Contains(r.stdout, "nothing changed") || !strings.Contains(r.stdout, list[0].ID.String()) {
			t.Fatalf("identical publish: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
	}
	if again := deploys(); len(again) != 2 || again[0].ID != list[0].ID || again[1].ID != list[1].ID {
		t.Fatalf("identical publishes changed the deploys: %+v, was %+v", again, list)
	}
	if r := run(t, "", append([]string{"deploys"}, common...)...); !strings.Contains(r.stdout, "--clean-urls=true") {
		t.Errorf("deploys does not show the settings:\n%s", r.stdout)
	}
	// Naming a setting changes it, and it sticks from then on.
	if r := run(t, "", append(append([]string{"publish", "--clean-urls=false", "--spa"}, common...), dir)...); r.code != exitNoEdges || strings.Contains(r.stdout, "nothing changed") {
		t.Fatalf("publish with new settings: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	write("three")
	run(t, "", append(append([]string{"publish"}, common...), dir)...)
	if l := deploys(); l[0].CleanURLs || !l[0].SPA {
		t.Fatalf("settings after a republish: %+v", l[0])
	}
}

// FuzzCheckPeerAddrs: a peer address is either refused with a reason or one that dials as
// host:port with a port from 1 to 65535; never a panic.
func FuzzCheckPeerAddrs(f *testing.F) {
	for _, s := range []string{"127.0.0.1:7000", "example.com", "[::1]:7000", "::1", ":7000", "host:0", "host:99999", "[::1]", "a:b:c", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, addr string) {
		err := checkPeerAddrs([]string{addr})
		if err != nil {
			if !strings.Contains(err.Error(), "peer address") {
				t.Fatalf("%q: error does not name the peer address: %v", addr, err)
			}
			return
		}
		host, port, serr := net.SplitHostPort(addr)
		if serr != nil || host == "" || port == "" || port == "0" {
			t.Fatalf("%q accepted: host %q port %q, %v", addr, host, port, serr)
		}
	})
}
