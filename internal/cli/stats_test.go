package cli

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dt-cdn/dt/trafficseries"
	"github.com/dt-cdn/dt/trafficstats"
)

// TestStatsCommand runs dt stats against an admin listener that answers /api/stats from a real
// series store holding one edge's statistics.
func TestStatsCommand(t *testing.T) {
	store, err := trafficseries.Open(trafficseries.Config{Dir: t.TempDir(), NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	c := trafficstats.New(trafficstats.Config{})
	for i := range 30 {
		c.Observe(trafficstats.Response{Site: "blog", Path: []string{"/", "/about"}[i%2], Remote: "192.0.2.1:1", Status: []int{200, 304, 404}[i%3], Bytes: 100})
	}
	if err := store.Add("edge-1", c.Take()); err != nil {
		t.Fatal(err)
	}
	rc := trafficseries.NewRedirectCounter()
	for i := range 7 {
		rc.Count("blog", []string{"edge-1", "edge-2"}[min(i, 1)], []string{"nearest", "fallback"}[min(i, 1)])
	}
	if err := rc.Flush(store, time.Now()); err != nil {
		t.Fatal(err)
	}
	var asked string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked = r.URL.String()
		since, _ := time.ParseDuration(r.URL.Query().Get("since"))
		res, err := store.Query(r.URL.Query().Get("site"), since)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		json.NewEncoder(w).Encode(res)
	}))
	defer srv.Close()
	admin := strings.TrimPrefix(srv.URL, "http://")

	r := run(t, "", "stats", "--admin", admin, "--site", "blog", "--since", "1h")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if asked != "/api/stats?since=1h0m0s&site=blog" {
		t.Errorf("asked %s", asked)
	}
	for _, want := range []string{"Requests 30, bytes 3000, unique visitors about 1", "2xx 10, 3xx 10 (304 10), 4xx 10", "Top paths", "/about", "edge-1"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, r.stdout)
		}
	}
	if !regexp.MustCompile(`(?m)^Redirects\s*\n\s+edge-2\s+fallback\s+6\s*\n\s+edge-1\s+nearest\s+1\s*$`).MatchString(r.stdout) {
		t.Errorf("output lacks the redirects per edge and reason, largest first:\n%s", r.stdout)
	}
	r = run(t, "", "stats", "--admin", admin, "--site", "blog", "--json")
	var res trafficseries.Result
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || res.Total.Requests != 30 {
		t.Errorf("--json: %v, %+v", err, res.Total)
	}
	if r := run(t, "", "stats", "--admin", admin, "--since", "2161h"); r.code != 2 {
		t.Errorf("--since past 90 days: exit %d", r.code)
	}
	if r := run(t, "", "stats", "--site", "blog"); r.code != 2 {
		t.Errorf("without --admin: exit %d", r.code)
	}
}
