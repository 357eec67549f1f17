package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dtdns "github.com/dt-cdn/dt/dns"
	"github.com/dt-cdn/dt/internal/testkit/syncbuf"
	"github.com/miekg/dns"
)

// startDNSCmd runs `dt dns args...` until the test ends (or stop), and returns once it serves,
// with the address it answers DNS on.
func startDNSCmd(t *testing.T, args ...string) (*runningNode, string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	rn := &runningNode{stderr: &syncbuf.Buffer{}, cancel: cancel, done: make(chan int, 1)}
	ready := make(chan NodeInfo, 1)
	env := &Env{Stdin: strings.NewReader(""), Stdout: io.Discard, Stderr: rn.stderr, NodeReady: func(i NodeInfo) { ready <- i }}
	go func() { rn.done <- Run(ctx, append([]string{"dns"}, args...), env) }()
	select {
	case rn.info = <-ready:
	case code := <-rn.done:
		cancel()
		t.Fatalf("dt dns exited with %d before serving:\n%s", code, rn.stderr)
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("dt dns did not start")
	}
	t.Cleanup(func() { rn.stop(t) })
	var st dtdns.Status
	waitFor(t, 10*time.Second, func() error {
		resp, err := http.Get("http://" + rn.info.Admin + "/dns")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("/dns: %s", resp.Status)
		}
		return json.NewDecoder(resp.Body).Decode(&st)
	})
	return rn, st.Addr
}

// query asks addr over network ("udp" or "tcp") and returns the answer as text without its id:
// what two servers that answer alike have in common.
func query(addr, network, name string, qtype uint16) (string, error) {
	q := new(dns.Msg)
	q.SetQuestion(name, qtype)
	q.SetEdns0(1232, false)
	r, _, err := (&dns.Client{Net: network, Timeout: 2 * time.Second}).Exchange(q, addr)
	if err != nil {
		return "", err
	}
	r.Id = 0
	return r.String(), nil
}

// zoneV1 and zoneV2 are two versions of a zone: v2 drops gone.example.com., changes www and
// bumps the serial.
const zoneV1 = `$ORIGIN example.com.
$TTL 300
@      SOA ns1 hostmaster 1 7200 900 1209600 60
@      NS  ns1
@      MX  10 mail
ns1    A   127.0.0.53
mail   A   192.0.2.25
www    A   192.0.2.1
alias  CNAME www
gone   A   192.0.2.66
*.wild TXT "wildcard"
`

var zoneV2 = strings.NewReplacer("gone   A   192.0.2.66\n", "", "www    A   192.0.2.1", "www    A   192.0.2.2", "hostmaster 1", "hostmaster 2").Replace(zoneV1)

var dnsQuestions = []struct {
	name  string
	qtype uint16
}{
	{"example.com.", dns.TypeSOA}, {"example.com.", dns.TypeMX}, {"www.example.com.", dns.TypeA},
	{"alias.example.com.", dns.TypeA}, {"gone.example.com.", dns.TypeA}, {"x.wild.example.com.", dns.TypeTXT},
	{"nope.example.com.", dns.TypeA}, {"www.example.com.", dns.TypeAAAA}, {"example.org.", dns.TypeA},
}

// sameAnswers checks that every server gives the reference server's answers, over UDP and TCP,
// to every question, and returns the reference's answer to www A over UDP.
func sameAnswers(ref string, others ...string) (string, error) {
	var www string
	for _, q := range dnsQuestions {
		for _, network := range []string{"udp", "tcp"} {
			want, err := query(ref, network, q.name, q.qtype)
			if err != nil {
				return "", err
			}
			if q.name == "www.example.com." && q.qtype == dns.TypeA && network == "udp" {
				www = want
			}
			for _, o := range others {
				got, err := query(o, network, q.name, q.qtype)
				if err != nil {
					return "", err
				}
				if got != want {
					return "", fmt.Errorf("%s %s over %s: %s answers\n%s\nbut %s answers\n%s", q.name, dns.TypeToString[q.qtype], network, o, got, ref, want)
				}
			}
		}
	}
	return www, nil
}

func writeFile(t *testing.T, name, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestDNSNodesStayIdentical runs three DNS nodes, publishes a zone, and checks that they answer
// alike over UDP and TCP; then it stops one, publishes a version without a record, restarts it
// on its data, and checks that the removal reached it.
func TestDNSNodesStayIdentical(t *testing.T) {
	keys := keygen(t)
	common := []string{"--keys", keys, "--local", "--no-sync", "--admin", "127.0.0.1:0", "--dns", "127.0.0.1:0", "--log-level", "warn"}
	a, addrA := startDNSCmd(t, append([]string{"--data", t.TempDir(), "--listen", "127.0.0.1:0"}, common...)...)
	hub := a.info.Listen[0]
	_, addrB := startDNSCmd(t, append([]string{"--data", t.TempDir(), "--peer", hub}, common...)...)
	dataC := t.TempDir()
	c, addrC := startDNSCmd(t, append([]string{"--data", dataC, "--peer", hub}, common...)...)

	v1 := writeFile(t, "example.com.zone", zoneV1)
	if r := run(t, "", "dns-publish", "--keys", keys, "--peer", hub, v1); r.code != 0 || !strings.Contains(r.stdout, "9 RRsets written, 0 removed") {
		t.Fatalf("dns-publish: %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	waitFor(t, 20*time.Second, func() error {
		www, err := sameAnswers(addrA, addrB, addrC)
		if err == nil && !strings.Contains(www, "192.0.2.1") {
			err = fmt.Errorf("not served yet:\n%s", www)
		}
		return err
	})
	if r := run(t, "", "dns-publish", "--keys", keys, "--peer", hub, v1); r.code != 0 || !strings.Contains(r.stdout, "0 RRsets written, 0 removed, 9 unchanged") {
		t.Fatalf("republishing the same zone: %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	c.stop(t)
	v2 := writeFile(t, "example.com.zone", zoneV2)
	if r := run(t, "", "dns-publish", "--keys", keys, "--peer", hub, "--dry-run", v2); r.code != 0 ||
		!strings.Contains(r.stdout, "remove gone.example.com./A") || !strings.Contains(r.stdout, "change www.example.com. A") {
		t.Fatalf("dry run: %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := run(t, "", "dns-publish", "--keys", keys, "--peer", hub, v2); r.code != 0 || !strings.Contains(r.stdout, "2 RRsets written, 1 removed") {
		t.Fatalf("dns-publish v2: %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	waitFor(t, 20*time.Second, func() error {
		_, err := sameAnswers(addrA, addrB)
		if gone, _ := query(addrB, "udp", "gone.example.com.", dns.TypeA); !strings.Contains(gone, "NXDOMAIN") {
			return fmt.Errorf("the removed record is still served:\n%s", gone)
		}
		return err
	})

	// The node that was offline comes back on its data and drops what was removed meanwhile.
	_, addrC = startDNSCmd(t, append([]string{"--data", dataC, "--peer", hub}, common...)...)
	waitFor(t, 20*time.Second, func() error {
		www, err := sameAnswers(addrA, addrB, addrC)
		if err == nil && !strings.Contains(www, "192.0.2.2") {
			err = fmt.Errorf("not updated yet:\n%s", www)
		}
		return err
	})

	r := run(t, "", "dns-records", "--keys", keys, "--peer", hub)
	if r.code != 0 || !strings.Contains(r.stdout, "; zone example.com.: 8 RRsets") || strings.Contains(r.stdout, "gone") ||
		!strings.HasPrefix(strings.SplitN(r.stdout, "\n", 3)[1], "example.com.\t300\tIN\tSOA") {
		t.Fatalf("dns-records: %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	// The whole zone goes: no node answers for it, and nothing of it is left in the table.
	if r := run(t, "", "dns-publish", "--keys", keys, "--peer", hub, "--remove-zone", "Example.COM", "--dry-run"); r.code != 0 ||
		!strings.HasPrefix(r.stdout, "remove example.com./SOA\n") || !strings.Contains(r.stdout, "8 RRsets to remove (dry run") {
		t.Fatalf("remove-zone dry run: %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := run(t, "", "dns-publish", "--keys", keys, "--peer", hub, "--remove-zone", "example.com"); r.code != 0 || !strings.Contains(r.stdout, "8 RRsets removed") {
		t.Fatalf("remove-zone: %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	waitFor(t, 20*time.Second, func() error {
		for _, addr := range []string{addrA, addrB, addrC} {
			if soa, err := query(addr, "udp", "example.com.", dns.TypeSOA); err != nil || !strings.Contains(soa, "REFUSED") {
				return fmt.Errorf("%s still answers for the removed zone (%v):\n%s", addr, err, soa)
			}
		}
		return nil
	})
	if r := run(t, "", "dns-records", "--keys", keys, "--peer", hub); r.code != 0 || strings.Contains(r.stdout, "example.com") {
		t.Fatalf("dns-records after remove-zone: %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := run(t, "", "dns-publish", "--keys", keys, "--peer", hub, "--remove-zone", "example.com"); r.code == 0 || !strings.Contains(r.stderr, "no zone example.com.") {
		t.Fatalf("removing a zone that is not there: %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

func TestDNSPublishValidatesFirst(t *testing.T) {
	keys := keygen(t)
	bad := writeFile(t, "bad.zone", "$ORIGIN example.com.\n@ 60 SOA ns1 hm 1 2 3 4 5\nwww 60 CNAME x\nwww 60 A 192.0.2.1\n")
	// No peer listens at this address: a zone refused before any connection fails at once.
	r := run(t, "", "dns-publish", "--keys", keys, "--peer", "127.0.0.1:1", "--timeout", "1m", bad)
	if r.code != 1 || !strings.Contains(r.stderr, "no NS records") || !strings.Contains(r.stderr, "other data") {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if r := run(t, "", "dns", "--keys", keys, "--data", t.TempDir()); r.code != 2 || !strings.Contains(r.stderr, "--dns is required") {
		t.Errorf("dt dns without --dns: %d %s", r.code, r.stderr)
	}
	if r := run(t, "", "resolve", "--keys", keys, "--peer", "127.0.0.1:1", "example.com", "ANY"); r.code != 2 {
		t.Errorf("dt resolve ANY: %d %s", r.code, r.stderr)
	}
}

// TestDNSFailedStartExits checks that a DNS node (and a plain node, which answers dt resolve)
// whose admin listener cannot bind exits with an error instead of waiting forever for a service
// that never starts, while the node's first events wait to be handed over.
func TestDNSFailedStartExits(t *testing.T) {
	keys := keygen(t)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	for _, args := range [][]string{
		{"dns", "--dns", "127.0.0.1:0"},
		{"node"},
	} {
		args = append(args, "--keys", keys, "--data", t.TempDir(), "--local", "--no-sync", "--admin", busy.Addr().String())
		if r := run(t, "", args...); r.code != 1 || !strings.Contains(r.stderr, "admin listener") {
			t.Errorf("dt %s with a busy admin port: exit %d\n%s", args[0], r.code, r.stderr)
		}
	}
}
