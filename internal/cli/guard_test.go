package cli

import (
	"encoding/json"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/dt-cdn/dt/internal/guardapi"
)

// wrongKeyAdds runs dt add with another network's keys n times against peer, each exiting 1
// with the refused-handshake hint.
func wrongKeyAdds(t *testing.T, wrong, peer string, n int) {
	t.Helper()
	for i := range n {
		r := run(t, "{}", "add", "--keys", wrong, "--peer", peer, "--timeout", "20s", "-")
		if r.code != 1 || !strings.Contains(r.stderr, "refused the handshake") {
			t.Fatalf("wrong-key add %d: exit %d\n%s", i+1, r.code, r.stderr)
		}
	}
}

// rightKeyAdd runs dt add with the network's keys and reports its exit code and stderr.
func rightKeyAdd(t *testing.T, keys, peer string) result {
	t.Helper()
	return run(t, `{"n":1}`, "add", "--keys", keys, "--peer", peer, "--timeout", "20s", "-")
}

func listBlocks(t *testing.T, args ...string) guardapi.List {
	t.Helper()
	r := run(t, "", append([]string{"guard", "list", "--json"}, args...)...)
	var l guardapi.List
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &l) != nil {
		t.Fatalf("dt guard list --json %v: exit %d\nstdout: %s\nstderr: %s", args, r.code, r.stdout, r.stderr)
	}
	return l
}

// blocksSoon lists the blocks of the node at admin once there is one, or after 5 s: the client
// sees its handshake refused before the node has counted the failure against its address.
func blocksSoon(t *testing.T, admin string) guardapi.List {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		l := listBlocks(t, "--admin", admin)
		if len(l.Blocks) > 0 || time.Now().After(deadline) {
			return l
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestGuardUnblock runs the whole cycle over the real commands, on a node that blocks loopback
// (--block-loopback) so that this machine's 127.0.0.1 stands for a remote operator's address:
// five dt add runs with the wrong network key get 127.0.0.1 blocked; dt guard list shows the
// block through the admin listener; with the node running, --data says the directory is in use
// and names --admin; stopped, --data lists it and dt guard unblock --data lifts it, and after a
// restart the right key works (the lift was saved). Blocked again, dt guard unblock --admin
// lifts it on the running node, the right key works at once, and again after a restart.
func TestGuardUnblock(t *testing.T) {
	keys, wrong, data := keygen(t), keygen(t), t.TempDir()
	args := []string{"--keys", keys, "--data", data, "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--local", "--no-sync", "--block-loopback"}
	n := startNodeCmd(t, args...)
	peer, admin := n.info.Listen[0], n.info.Admin

	wrongKeyAdds(t, wrong, peer, 5)
	l := blocksSoon(t, admin)
	if len(l.Blocks) != 1 || l.Blocks[0].Prefix != netip.MustParsePrefix("127.0.0.1/32") || l.Blocks[0].Reason != "auth_failures" ||
		l.Blocks[0].Count != 1 || l.Blocks[0].Until.Sub(l.Blocks[0].Since) != time.Hour {
		t.Fatalf("blocks after 5 wrong-key runs: %+v", l.Blocks)
	}
	r := run(t, "", "guard", "list", "--admin", admin)
	for _, w := range []string{"PREFIX", "REASON", "SINCE", "UNTIL", "COUNT", "127.0.0.1/32", "auth_failures"} {
		if r.code != 0 || !strings.Contains(r.stdout, w) {
			t.Fatalf("dt guard list lacks %q: exit %d\n%s%s", w, r.code, r.stdout, r.stderr)
		}
	}
	t.Logf("dt guard list --admin:\n%s", r.stdout)
	if r := rightKeyAdd(t, keys, peer); r.code == 0 {
		t.Fatal("the right key got through a block")
	} else if !strings.Contains(r.stderr, "reset the connection before reading the handshake") || !strings.Contains(r.stderr, "dt guard unblock") {
		t.Errorf("the right key against a block is not told the address is refused:\n%s", r.stderr)
	}
	r = run(t, "", "guard", "list", "--data", data)
	if r.code != 1 || !strings.Contains(r.stderr, "in use by a running node") || !strings.Contains(r.stderr, "--admin") {
		t.Fatalf("dt guard list --data on a running node: exit %d\n%s", r.code, r.stderr)
	}
	t.Logf("dt guard list --data on a running node:\n%s", r.stderr)

	// Stopped: --data lists the block and lifts it, for good.
	n.stop(t)
	if l := listBlocks(t, "--data", data); len(l.Blocks) != 1 {
		t.Fatalf("dt guard list --data on the stopped node: %+v", l.Blocks)
	}
	r = run(t, "", "guard", "unblock", "--data", data, "127.0.0.1")
	if r.code != 0 || !strings.Contains(r.stdout, "Lifted 127.0.0.1/32 (auth_failures") {
		t.Fatalf("dt guard unblock --data: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if l := listBlocks(t, "--data", data); len(l.Blocks) != 0 {
		t.Fatalf("blocks after unblock: %+v", l.Blocks)
	}
	if r := run(t, "", "guard", "unblock", "--data", data, "127.0.0.1"); r.code != 1 || !strings.Contains(r.stderr, "127.0.0.1 is not blocked") {
		t.Fatalf("unblocking what is not blocked: exit %d\n%s", r.code, r.stderr)
	}
	n = startNodeCmd(t, args...)
	peer, admin = n.info.Listen[0], n.info.Admin
	if r := rightKeyAdd(t, keys, peer); r.code != 0 {
		t.Fatalf("the right key after unblock --data and a restart: exit %d\n%s", r.code, r.stderr)
	}

	// Running: --admin lifts it, at once and for good.
	wrongKeyAdds(t, wrong, peer, 5)
	if l := blocksSoon(t, admin); len(l.Blocks) != 1 {
		t.Fatalf("blocks after 5 more wrong-key runs: %+v", l.Blocks)
	}
	r = run(t, "", "guard", "unblock", "--admin", admin, "--json", "all")
	var res guardapi.UnblockResult
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &res) != nil || len(res.Lifted) != 1 {
		t.Fatalf("dt guard unblock --admin all: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	began := time.Now()
	if r := rightKeyAdd(t, keys, peer); r.code != 0 {
		t.Fatalf("the right key right after unblock --admin: exit %d\n%s", r.code, r.stderr)
	}
	t.Logf("the right key's dt add took %s after the unblock", time.Since(began).Round(time.Millisecond))
	if !strings.Contains(n.stderr.String(), "Blocks lifted through the admin listener") {
		t.Error("the node did not log the unblock")
	}
	n.stop(t)
	n = startNodeCmd(t, args...)
	if r := rightKeyAdd(t, keys, n.info.Listen[0]); r.code != 0 {
		t.Fatalf("the right key after unblock --admin and a restart: exit %d\n%s", r.code, r.stderr)
	}
	if l := listBlocks(t, "--admin", n.info.Admin); len(l.Blocks) != 0 {
		t.Fatalf("a block came back after a restart: %+v", l.Blocks)
	}
}

// TestLoopbackNeverBlocked: a node with the default guard does not block loopback after many
// wrong-key runs (ten, twice the threshold); the right key works right after; the blocks it
// spared are counted.
func TestLoopbackNeverBlocked(t *testing.T) {
	keys, wrong := keygen(t), keygen(t)
	n := startNodeCmd(t, "--keys", keys, "--data", t.TempDir(), "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--local", "--no-sync")
	peer, admin := n.info.Listen[0], n.info.Admin
	wrongKeyAdds(t, wrong, peer, 10)
	if l := listBlocks(t, "--admin", admin); len(l.Blocks) != 0 {
		t.Fatalf("loopback blocked: %+v", l.Blocks)
	}
	if r := rightKeyAdd(t, keys, peer); r.code != 0 {
		t.Fatalf("the right key after 10 wrong-key runs: exit %d\n%s", r.code, r.stderr)
	}
	metrics := getBody(t, "http://"+admin+"/metrics")
	if !strings.Contains(metrics, `dt_ipguard_failures_total{reason="bad_key"} 10`) {
		t.Errorf("want 10 failed handshakes:\n%s", grepLines(metrics, "dt_ipguard_failures_total"))
	}
	if !strings.Contains(metrics, `dt_ipguard_spared_blocks_total{reason="auth_failures"} 2`) {
		t.Errorf("spared blocks not counted:\n%s", grepLines(metrics, "dt_ipguard_spared"))
	}
	if !strings.Contains(n.stderr.String(), "loopback address not blocked") {
		t.Errorf("the spared block was not logged:\n%s", n.stderr)
	}
	if r := run(t, "", "guard", "list", "--admin", admin); r.code != 0 || !strings.Contains(r.stdout, "No address is blocked.") {
		t.Errorf("dt guard list with no blocks: exit %d\n%s", r.code, r.stdout)
	}
}

func grepLines(s, sub string) string {
	var out []string
	for line := range strings.SplitSeq(s, "\n") {
		if strings.Contains(line, sub) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

// TestGuardAdminRefusesBrowsers: POST /guard/unblock answers only a JSON body without an Origin
// header, so a web page can neither send it cross-origin (a simple form post is text/plain or
// form-encoded, and application/json needs a preflight that is never granted) nor through a
// name rebound to loopback (the browser sends Origin). GET cannot lift anything.
func TestGuardAdminRefusesBrowsers(t *testing.T) {
	keys := keygen(t)
	n := startNodeCmd(t, "--keys", keys, "--data", t.TempDir(), "--admin", "127.0.0.1:0", "--local", "--no-sync")
	url := "http://" + n.info.Admin + guardapi.UnblockPath
	body := `{"target":"all"}`
	cases := []struct {
		name        string
		method      string
		contentType string
		origin      string
		want        int
	}{
		{"form post", http.MethodPost, "application/x-www-form-urlencoded", "", http.StatusUnsupportedMediaType},
		{"text post", http.MethodPost, "text/plain", "", http.StatusUnsupportedMediaType},
		{"cross-origin", http.MethodPost, "application/json", "http://evil.example", http.StatusForbidden},
		{"rebound name", http.MethodPost, "application/json", "http://" + n.info.Admin, http.StatusForbidden},
		{"preflight", http.MethodOptions, "", "http://evil.example", http.StatusMethodNotAllowed},
		{"get", http.MethodGet, "", "", http.StatusMethodNotAllowed},
		{"bad target", http.MethodPost, "application/json", "", http.StatusBadRequest},
		{"json", http.MethodPost, "application/json", "", http.StatusOK},
	}
	for _, c := range cases {
		b := body
		if c.name == "bad target" {
			b = `{"target":"evil"}`
		}
		req, err := http.NewRequest(c.method, url, strings.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		if c.contentType != "" {
			req.Header.Set("Content-Type", c.contentType)
		}
		if c.origin != "" {
			req.Header.Set("Origin", c.origin)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.want || resp.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("%s: %s, Access-Control-Allow-Origin %q; want %d and none", c.name, resp.Status,
				resp.Header.Get("Access-Control-Allow-Origin"), c.want)
		}
	}
}

// TestNeverBlockFlag: --never-block exempts its addresses even where --block-loopback lets
// loopback be blocked, and a value that is not an address or a prefix is a usage error.
func TestNeverBlockFlag(t *testing.T) {
	keys, wrong := keygen(t), keygen(t)
	n := startNodeCmd(t, "--keys", keys, "--data", t.TempDir(), "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0",
		"--local", "--no-sync", "--block-loopback", "--never-block", "10.0.0.0/8", "--never-block", "127.0.0.1")
	wrongKeyAdds(t, wrong, n.info.Listen[0], 6)
	if l := listBlocks(t, "--admin", n.info.Admin); len(l.Blocks) != 0 {
		t.Fatalf("a --never-block address was blocked: %+v", l.Blocks)
	}
	if m := getBody(t, "http://"+n.info.Admin+"/metrics"); !strings.Contains(m, `dt_ipguard_failures_total{reason="bad_key"} 6`) {
		t.Errorf("want 6 failed handshakes:\n%s", grepLines(m, "dt_ipguard_failures_total"))
	}
	if r := rightKeyAdd(t, keys, n.info.Listen[0]); r.code != 0 {
		t.Fatalf("the right key: exit %d\n%s", r.code, r.stderr)
	}
	r := run(t, "", "node", "--keys", keys, "--data", t.TempDir(), "--never-block", "example.com")
	if r.code != 2 || !strings.Contains(r.stderr, `"example.com" is not an IP address or a prefix`) {
		t.Fatalf("--never-block example.com: exit %d\n%s", r.code, r.stderr)
	}
}
