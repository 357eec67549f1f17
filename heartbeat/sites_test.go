package heartbeat

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// deployHex returns a deploy id of 64 hex digits made from s.
func deployHex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// siteStates returns n sites, each serving its current deploy, except those named in lagging,
// which serve an older one (or none when the name is in none).
func siteStates(n int, lagging map[string]bool, none map[string]bool) []SiteState {
	states := make([]SiteState, n)
	for i := range states {
		name := fmt.Sprintf("site-%04d", i)
		if i == 0 {
			name = "default"
		}
		s := SiteState{Site: name, Current: deployHex(name + " v2"), Served: deployHex(name + " v2")}
		switch {
		case none[name]:
			s.Served = ""
		case lagging[name]:
			s.Served = deployHex(name + " v1")
		}
		states[i] = s
	}
	return states
}

// encodedSize returns the size of a realistic heartbeat reporting states.
func encodedSize(t testing.TB, states []SiteState) int {
	h := sample()
	h.Name, h.IntervalMS = "ams-1", 2000
	h.Deploy = deployHex("default v2")
	h.SetSites(states)
	b, err := Encode(h)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Decode(b); err != nil {
		t.Fatal(err)
	}
	return len(b)
}

func TestSetSites(t *testing.T) {
	var h Heartbeat
	h.SetSites(siteStates(5, map[string]bool{"site-0003": true}, map[string]bool{"site-0001": true}))
	want := []Lag{{Site: "site-0001", Deploy: ""}, {Site: "site-0003", Deploy: deployHex("site-0003 v1")[:DeployPrefixLen]}}
	if h.Sites != 5 || fmt.Sprint(h.Lagging) != fmt.Sprint(want) || h.LaggingMore != 0 || len(h.SitesDigest) != DigestLen {
		t.Fatalf("SetSites: %d sites, lagging %v + %d, digest %q", h.Sites, h.Lagging, h.LaggingMore, h.SitesDigest)
	}
	for name, lags := range map[string]bool{"default": false, "site-0001": true, "site-0002": false, "site-0003": true, "site-0009": false} {
		if got := h.LaggingOn(name, "default"); got != lags {
			t.Errorf("LaggingOn(%s) = %v", name, got)
		}
	}
	// A site with no current deploy yet is not lagging.
	h.SetSites([]SiteState{{Site: "new"}})
	if len(h.Lagging) != 0 || h.Sites != 1 {
		t.Errorf("a site without a current deploy: %+v", h.Lagging)
	}

	// The digest depends on every deploy served, not on the order given.
	a := siteStates(100, nil, nil)
	rev := make([]SiteState, len(a))
	for i := range a {
		rev[len(a)-1-i] = a[i]
	}
	if SitesDigest(a) != SitesDigest(rev) {
		t.Error("the digest depends on the order of the sites")
	}
	if SitesDigest(a) == SitesDigest(siteStates(100, map[string]bool{"site-0042": true}, nil)) {
		t.Error("the digest does not change with a deploy served")
	}
	sum := sha256.Sum256([]byte("a " + deployHex("x") + "\nb \n"))
	if got := SitesDigest([]SiteState{{Site: "b"}, {Site: "a", Served: deployHex("x")}}); got != hex.EncodeToString(sum[:])[:DigestLen] {
		t.Errorf("digest %s", got)
	}
}

// TestLaggingBounded: however many sites lag, the list stays within MaxLagging entries and
// MaxLaggingBytes, the rest counted; receivers then take every site as lagging.
func TestLaggingBounded(t *testing.T) {
	lagging := map[string]bool{}
	for i := range 1000 {
		lagging[fmt.Sprintf("site-%04d", i)] = true
	}
	var h Heartbeat
	h.SetSites(siteStates(1000, lagging, nil))
	if len(h.Lagging) == 0 || len(h.Lagging) > MaxLagging || len(h.Lagging)+h.LaggingMore != 999 {
		t.Fatalf("%d listed, %d more", len(h.Lagging), h.LaggingMore)
	}
	if !h.LaggingOn("default", "default") {
		t.Error("a site not listed is not taken as lagging while lagging_more is set")
	}
	// Long names: the byte bound cuts the list first.
	var long []SiteState
	for i := range 40 {
		name := fmt.Sprintf("%s-%02d", strings.Repeat("x", 60), i)
		long = append(long, SiteState{Site: name, Current: deployHex(name)})
	}
	h.SetSites(long)
	if len(h.Lagging) >= MaxLagging || len(h.Lagging)+h.LaggingMore != 40 {
		t.Fatalf("long names: %d listed, %d more", len(h.Lagging), h.LaggingMore)
	}
	if n := encodedSize(t, long); n > 2048 {
		t.Errorf("heartbeat with 40 long names lagging: %d bytes", n)
	}
	if n := encodedSize(t, siteStates(1000, lagging, nil)); n > 2048 {
		t.Errorf("heartbeat at 1,000 sites, all lagging: %d bytes", n)
	}
}

// TestHeartbeatSizeAtManySites: in steady state a heartbeat at 1,000 sites is as small as at one
// (the digest replaces the detail), and under 2 KB with one site lagging.
func TestHeartbeatSizeAtManySites(t *testing.T) {
	one := encodedSize(t, siteStates(1, nil, nil))
	many := encodedSize(t, siteStates(1000, nil, nil))
	if many-one > len("999") {
		t.Errorf("steady state: %d bytes at 1 site, %d at 1,000", one, many)
	}
	if n := encodedSize(t, siteStates(1000, map[string]bool{"site-0500": true}, nil)); n >= 2048 {
		t.Errorf("one lagging site of 1,000: %d bytes", n)
	}
}

// TestEarlierEdgeLagging: a heartbeat without the per-site fields (an edge of an earlier release)
// serves the default site when synced, and no other.
func TestEarlierEdgeLagging(t *testing.T) {
	h := sample()
	if h.LaggingOn("default", "default") || !h.LaggingOn("blog", "default") {
		t.Error("synced earlier edge")
	}
	h.Synced = false
	if !h.LaggingOn("default", "default") {
		t.Error("unsynced earlier edge")
	}
}

func TestSitesValidated(t *testing.T) {
	good := sample()
	good.SetSites(siteStates(3, map[string]bool{"site-0001": true}, nil))
	for name, change := range map[string]func(h *Heartbeat){
		"negative sites":        func(h *Heartbeat) { h.Sites = -1 },
		"more lagging than all": func(h *Heartbeat) { h.LaggingMore = 3 },
		"unsorted": func(h *Heartbeat) {
			h.Sites, h.Lagging = 3, []Lag{{Site: "b"}, {Site: "a"}}
		},
		"repeated":        func(h *Heartbeat) { h.Sites, h.Lagging = 3, []Lag{{Site: "a"}, {Site: "a"}} },
		"bad site name":   func(h *Heartbeat) { h.Lagging[0].Site = "Site" },
		"long deploy":     func(h *Heartbeat) { h.Lagging[0].Deploy = deployHex("x") },
		"upper hex":       func(h *Heartbeat) { h.Lagging[0].Deploy = "ABCDEF012345" },
		"short digest":    func(h *Heartbeat) { h.SitesDigest = "abc" },
		"upper current":   func(h *Heartbeat) { h.CurrentDigest = strings.ToUpper(h.CurrentDigest) },
		"current alone":   func(h *Heartbeat) { h.Sites, h.Lagging, h.SitesDigest = 0, nil, "" },
		"no digest":       func(h *Heartbeat) { h.SitesDigest = "" },
		"too many listed": func(h *Heartbeat) { h.SetSites(siteStates(40, nil, nil)); h.Lagging = make([]Lag, MaxLagging+1) },
	} {
		h := good
		h.Lagging = append([]Lag(nil), good.Lagging...)
		change(&h)
		if _, err := Encode(h); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := Encode(good); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkHeartbeatSize reports the encoded size of a heartbeat (bytes/beat) at 1, 100 and
// 1,000 sites, in steady state and with one site lagging, and the time to fill and encode it.
func BenchmarkHeartbeatSize(b *testing.B) {
	for _, n := range []int{1, 100, 1000} {
		for _, lagging := range []bool{false, true} {
			name := fmt.Sprintf("sites=%d/steady", n)
			lag := map[string]bool{}
			if lagging {
				name = fmt.Sprintf("sites=%d/one-lagging", n)
				lag["default"] = true
			}
			states := siteStates(n, lag, nil)
			b.Run(name, func(b *testing.B) {
				size := 0
				for b.Loop() {
					size = encodedSize(b, states)
				}
				b.ReportMetric(float64(size), "bytes/beat")
			})
		}
	}
}

// TestDecodeDropsMalformedSites: a heartbeat whose per-site fields are malformed keeps its
// other fields, and reads as from an edge that reports no sites.
func TestDecodeDropsMalformedSites(t *testing.T) {
	base, err := Encode(sample())
	if err != nil {
		t.Fatal(err)
	}
	var long []string
	for i := range MaxLagging + 1 {
		long = append(long, fmt.Sprintf(`{"site":"s%02d","deploy":""}`, i))
	}
	for _, extra := range []string{
		`"sites":2,"lagging":[{"site":"blog","deploy":""}]`, // no digest
		`"sites":50,"lagging":[` + strings.Join(long, ",") + `],"sites_digest":"0123456789abcdef"`,
		`"sites":2,"lagging":[{"site":"b"},{"site":"a"}],"sites_digest":"0123456789abcdef"`,
		`"sites":-1,"sites_digest":"0123456789abcdef"`,
		`"sites":2,"lagging":[{"site":"a","deploy":"0123456789abc"}],"sites_digest":"0123456789abcdef"`,
		`"sites":2,"lagging":[{"site":"A","deploy":""}],"sites_digest":"0123456789abcdef"`,
		`"sites":2,"lagging_more":-1,"sites_digest":"0123456789abcdef"`,
		`"sites":2,"sites_digest":"0123"`,
		`"sites":2,"sites_digest":"0123456789abcdef","current_digest":"xyz"`,
		`"current_digest":"0123456789abcdef"`,
	} {
		b := append(base[:len(base)-1:len(base)-1], ","+extra+"}"...)
		h, err := Decode(b)
		if err != nil {
			t.Errorf("%s: %v", extra, err)
			continue
		}
		if h.Sites != 0 || h.Lagging != nil || h.SitesDigest != "" || h.CurrentDigest != "" || h.Deploy != sample().Deploy || !h.Synced {
			t.Errorf("%s: decoded %+v", extra, h)
		}
		if !h.LaggingOn("blog", "default") || h.LaggingOn("default", "default") || h.ServesSite("blog", "") != ReportsNoSites {
			t.Errorf("%s: not read as an edge of an earlier release", extra)
		}
		if !errors.Is(h.SitesRefused, ErrInvalid) {
			t.Errorf("%s: SitesRefused %v", extra, h.SitesRefused)
		}
	}
}

// TestServesSite is the rule receivers count an edge for a site by, over the states an edge
// goes through while blog's pointer moves from v1 to v2 (docs lagging throughout): before it
// hears of v2, while it fetches v2, once it serves v2; as seen by a receiver that already knows
// v2 and by one that does not yet.
func TestServesSite(t *testing.T) {
	states := func(blogCurrent, blogServed string) []SiteState {
		return []SiteState{
			{Site: "default", Current: deployHex("default v1"), Served: deployHex("default v1")},
			{Site: "blog", Current: deployHex(blogCurrent), Served: deployHex(blogServed)},
			{Site: "docs", Current: deployHex("docs v2"), Served: deployHex("docs v1")},
		}
	}
	knows := func(blog string) string {
		return CurrentsDigest(map[string]string{"default": deployHex("default v1"), "blog": deployHex(blog), "docs": deployHex("docs v2")})
	}
	for _, c := range []struct {
		name                       string
		edge                       []SiteState
		receiver                   string
		blog, docs, defaultVerdict SiteVerdict
	}{
		{"edge and receiver before the publish", states("blog v1", "blog v1"), knows("blog v1"), Serves, LagsListed, Serves},
		{"edge not yet told of blog v2", states("blog v1", "blog v1"), knows("blog v2"), OtherCurrents, LagsListed, OtherCurrents},
		{"edge fetching blog v2", states("blog v2", "blog v1"), knows("blog v2"), LagsListed, LagsListed, Serves},
		{"edge serving blog v2", states("blog v2", "blog v2"), knows("blog v2"), Serves, LagsListed, Serves},
		{"receiver not yet told of blog v2", states("blog v2", "blog v2"), knows("blog v1"), OtherCurrents, LagsListed, OtherCurrents},
	} {
		var h Heartbeat
		h.SetSites(c.edge)
		for name, want := range map[string]SiteVerdict{"blog": c.blog, "docs": c.docs, "default": c.defaultVerdict} {
			if got := h.ServesSite(name, c.receiver); got != want {
				t.Errorf("%s: %s verdict %d, want %d", c.name, name, got, want)
			}
		}
	}
	var all Heartbeat
	all.SetSites(states("blog v2", "blog v2")[:2])
	if got := all.ServesSite("blog", CurrentsDigest(map[string]string{"default": deployHex("default v1"), "blog": deployHex("blog v2")})); got != Serves {
		t.Errorf("an edge serving every current deploy: verdict %d", got)
	}
	all.CurrentDigest = "" // an edge of the release before CurrentDigest: its SitesDigest alone
	if got := all.ServesSite("blog", CurrentsDigest(map[string]string{"default": deployHex("default v1"), "blog": deployHex("blog v2")})); got != Serves {
		t.Errorf("an edge of the previous release serving every current deploy: verdict %d", got)
	}
	if got := sample().ServesSite("blog", knows("blog v2")); got != ReportsNoSites {
		t.Errorf("an edge reporting no sites: verdict %d", got)
	}
	all.LaggingMore, all.Sites = 1, 3
	if got := all.ServesSite("blog", ""); got != LagsUnlisted {
		t.Errorf("lagging on unlisted sites: verdict %d", got)
	}
}

// TestCurrentsDigest: sites without a current deploy do not count, and the order does not.
func TestCurrentsDigest(t *testing.T) {
	a := CurrentsDigest(map[string]string{"blog": deployHex("b"), "docs": deployHex("d"), "new": ""})
	b := SitesDigest([]SiteState{{Site: "docs", Served: deployHex("d")}, {Site: "blog", Served: deployHex("b")}})
	if a != b || len(a) != DigestLen {
		t.Errorf("CurrentsDigest %q, SitesDigest of the same deploys %q", a, b)
	}
}
