package cli

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/dt-cdn/dt/internal/testkit/testdns"
)

// TestResolveFindsTheLyingNode runs three nodes whose resolvers are test DNS servers, one of them
// lying about example.com's MX, and checks that dt resolve names that node and exits 3; with the
// liar gone, the nodes agree and it exits 0.
func TestResolveFindsTheLyingNode(t *testing.T) {
	keys := keygen(t)
	honest := testdns.MXResolver(t, "mail.example.com.")
	liar := testdns.MXResolver(t, "mail.attacker.example.")
	common := []string{"--keys", keys, "--local", "--no-sync", "--log-level", "warn"}
	hub := startNodeCmd(t, append([]string{"--data", t.TempDir(), "--listen", "127.0.0.1:0", "--resolver", honest}, common...)...)
	peer := hub.info.Listen[0]
	second := startNodeCmd(t, append([]string{"--data", t.TempDir(), "--peer", peer, "--resolver", honest}, common...)...)
	lying := startNodeCmd(t, append([]string{"--data", t.TempDir(), "--peer", peer, "--resolver", liar}, common...)...)

	r := run(t, "", "resolve", "--keys", keys, "--peer", peer, "--local=false", "--expect", "3", "--timeout", "20s", "--type", "MX", "example.com")
	if r.code != exitDisagree {
		t.Fatalf("exit %d, want %d\n%s%s", r.code, exitDisagree, r.stdout, r.stderr)
	}
	t.Logf("dt resolve printed:\n%s", r.stdout)
	verdict := r.stdout[strings.Index(r.stdout, "verdict:"):]
	if !strings.Contains(verdict, "DISAGREE") || !strings.Contains(verdict, lying.info.ID) || strings.Contains(verdict, hub.info.ID) || strings.Contains(verdict, second.info.ID) {
		t.Errorf("the verdict does not name the lying node %s alone:\n%s", lying.info.ID, r.stdout)
	}
	for _, id := range []string{hub.info.ID, second.info.ID, lying.info.ID} {
		if !strings.Contains(r.stdout, "node "+id) {
			t.Errorf("node %s's answer is not shown:\n%s", id, r.stdout)
		}
	}
	if !strings.Contains(r.stdout, "example.com. MX 10 mail.attacker.example.") {
		t.Errorf("the lie is not shown:\n%s", r.stdout)
	}

	lying.stop(t)
	// This machine's view (through the honest resolver) joins the two remaining nodes.
	r = run(t, "", "resolve", "--keys", keys, "--peer", peer, "--resolver", honest, "--expect", "3", "--timeout", "20s", "example.com", "mx")
	if r.code != 0 || !strings.Contains(r.stdout, "verdict: agree (3 nodes)") || !strings.Contains(r.stdout, "(this machine)") {
		t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	// Too few answers for --expect: no verdict, exit 4, within the timeout.
	began := time.Now()
	r = run(t, "", "resolve", "--keys", keys, "--peer", peer, "--local=false", "--expect", "5", "--timeout", "2s", "example.com", "MX")
	if r.code != exitNoVerdict {
		t.Fatalf("exit %d, want %d\n%s%s", r.code, exitNoVerdict, r.stdout, r.stderr)
	}
	t.Logf("a resolve with a missing node took %s (--timeout 2s)", time.Since(began).Round(time.Millisecond))
}

// TestResolveReachesLateNodes starts dt resolve while only two of three nodes are up: the third,
// linking a moment later, answers too, because the request is repeated while answers are
// awaited (and each node answers it once).
func TestResolveReachesLateNodes(t *testing.T) {
	keys := keygen(t)
	honest := testdns.MXResolver(t, "mail.example.com.")
	common := []string{"--keys", keys, "--local", "--no-sync", "--log-level", "warn", "--resolver", honest}
	hub := startNodeCmd(t, append([]string{"--data", t.TempDir(), "--listen", "127.0.0.1:0"}, common...)...)
	peer := hub.info.Listen[0]
	startNodeCmd(t, append([]string{"--data", t.TempDir(), "--peer", peer}, common...)...)

	done := make(chan result, 1)
	go func() {
		done <- run(t, "", "resolve", "--keys", keys, "--peer", peer, "--local=false", "--expect", "3", "--timeout", "20s", "--json", "example.com", "MX")
	}()
	time.Sleep(1500 * time.Millisecond) // the first request has gone out to the two nodes
	late := startNodeCmd(t, append([]string{"--data", t.TempDir(), "--peer", peer}, common...)...)
	r := <-done
	if r.code != 0 {
		t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	var out struct {
		Answers []struct {
			Node string `json:"node"`
		} `json:"answers"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("%v\n%s", err, r.stdout)
	}
	nodes := map[string]int{}
	for _, a := range out.Answers {
		nodes[a.Node]++
	}
	if len(out.Answers) != 3 || nodes[late.info.ID] != 1 {
		t.Fatalf("answers from %v, want one from each of 3 nodes including the late %s", nodes, late.info.ID)
	}
}
