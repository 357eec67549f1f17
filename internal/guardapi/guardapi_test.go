package guardapi

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/dt-cdn/dt/dt"
	"github.com/dt-cdn/dt/internal/testkit/testnet"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestRoutesOnStoredBlocks serves the routes over a stopped node's (empty) blocks on loopback:
// the list is empty, lifting all is no failure, and lifting an address that is not blocked is a
// 404 that says so through describe.
func TestRoutesOnStoredBlocks(t *testing.T) {
	keys, _ := testnet.Keys(t)
	dir := t.TempDir()
	cfg := dt.LocalConfig()
	cfg.Keys, cfg.Master, cfg.DataDir, cfg.NoSync = keys, true, dir, true
	n, err := dt.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	testnet.Drain(n)
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	store, err := dt.OpenStoredBlocks(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	mux := http.NewServeMux()
	Routes(mux, store, slog.New(slog.DiscardHandler), func(err error) string { return "described: " + err.Error() })
	srv := httptest.NewServer(mux)
	defer srv.Close()

	resp, err := http.Get(srv.URL + Path)
	if err != nil {
		t.Fatal(err)
	}
	var list List
	err = json.NewDecoder(resp.Body).Decode(&list)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || list.Blocks == nil || len(list.Blocks) != 0 {
		t.Fatalf("GET %s: %s, %+v, %v; want 200 and an empty list", Path, resp.Status, list, err)
	}
	for _, tc := range []struct {
		target string
		status int
		err    string
	}{
		{"all", http.StatusOK, ""},
		{"192.0.2.7", http.StatusNotFound, "described: 192.0.2.7 is not blocked"},
		{"nonsense", http.StatusBadRequest, "is not an IP address"},
	} {
		body, _ := json.Marshal(UnblockRequest{Target: tc.target})
		resp, err := http.Post(srv.URL+UnblockPath, "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		var res UnblockResult
		err = json.NewDecoder(resp.Body).Decode(&res)
		resp.Body.Close()
		if err != nil || resp.StatusCode != tc.status || (tc.err == "") != (res.Error == "") || !strings.Contains(res.Error, tc.err) {
			t.Errorf("unblock %s: %s, %+v, %v; want %d and error %q", tc.target, resp.Status, res, err, tc.status, tc.err)
		}
	}
}

func TestParseTarget(t *testing.T) {
	for in, want := range map[string]string{
		"all":                  "all",
		"192.0.2.7":            "192.0.2.7",
		"192.0.2.7:41234":      "192.0.2.7",
		"192.0.2.7/24":         "192.0.2.0/24",
		"2001:db8::1":          "2001:db8::1",
		"[2001:db8::1]":        "2001:db8::1",
		"[2001:db8::1]:7000":   "2001:db8::1",
		"fe80::1%eth0":         "fe80::1",
		"2001:db8:1:2::/48":    "2001:db8:1::/48",
		" ::ffff:192.0.2.7 ":   "::ffff:192.0.2.7",
		"::ffff:192.0.2.0/120": "::ffff:192.0.2.0/120",
	} {
		got, err := ParseTarget(in)
		if err != nil || got.String() != want {
			t.Errorf("ParseTarget(%q) = %v, %v; want %s", in, got, err, want)
		}
	}
	for _, in := range []string{"", "ALL", "example.com", "192.0.2.300", "192.0.2.0/33", "1.2.3.4:", "[::1"} {
		if got, err := ParseTarget(in); err == nil {
			t.Errorf("ParseTarget(%q) = %v, want an error", in, got)
		}
	}
}

// FuzzParseTarget: the body of POST /guard/unblock reaches this parser. Whatever it
// accepts is all or a valid, masked prefix, and its printed form parses back to the same target.
func FuzzParseTarget(f *testing.F) {
	for _, s := range []string{"all", "192.0.2.7", "[2001:db8::1]:7000", "2001:db8::/48", "fe80::1%eth0", "::ffff:1.2.3.4", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseTarget(s)
		if err != nil {
			return
		}
		if !got.All && (!got.Prefix.IsValid() || got.Prefix != got.Prefix.Masked() || got.Prefix.Addr().Zone() != "") {
			t.Fatalf("ParseTarget(%q) = %#v", s, got)
		}
		again, err := ParseTarget(got.String())
		if err != nil || again != got {
			t.Fatalf("%q parsed as %v, which parses back as %v, %v", s, got, again, err)
		}
	})
}
