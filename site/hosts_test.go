package site

import (
	"strings"
	"testing"
)

func mustRecord(t testing.TB, name string, hosts ...string) Record {
	t.Helper()
	r, err := NewRecord(name, hosts)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestHostsMatch(t *testing.T) {
	records := []Record{
		mustRecord(t, "blog", "blog.example.com", "www.blog.example.com"),
		mustRecord(t, "docs", "*.docs.example.com", "docs.example.com"),
		mustRecord(t, "special", "api.docs.example.com"),
	}
	cases := []struct {
		host, site string // site "" means no site
	}{
		{"blog.example.com", "blog"},
		{"BLOG.Example.COM", "blog"},
		{"blog.example.com.", "blog"},
		{"blog.example.com:8443", "blog"},
		{"blog.example.com.:443", "blog"},
		{"www.blog.example.com", "blog"},
		{"docs.example.com", "docs"},
		{"v1.docs.example.com", "docs"},
		{"api.docs.example.com", "special"}, // an exact host beats a wildcard
		{"a.b.docs.example.com", ""},        // a wildcard covers one label
		{"example.com", ""},
		{"*.docs.example.com", ""},
		{"", ""},
		{"[::1]:443", ""},
		{"127.0.0.1:80", ""},
	}
	h := NewHosts(records, false)
	for _, c := range cases {
		got, ok := h.Match(c.host)
		if got != c.site || ok != (c.site != "") {
			t.Errorf("Match(%q) = %q, %v; want %q", c.host, got, ok, c.site)
		}
	}
	// With the implicit default site, every host no record claims is the default's.
	withDefault := NewHosts(records, true)
	for _, c := range cases {
		want := c.site
		if want == "" {
			want = DefaultSite
		}
		if got, ok := withDefault.Match(c.host); got != want || !ok {
			t.Errorf("with the implicit default: Match(%q) = %q, %v; want %q", c.host, got, ok, want)
		}
	}
}

func TestHostsConflictSameOnEveryNode(t *testing.T) {
	a := mustRecord(t, "alpha", "shared.example", "*.w.example")
	b := mustRecord(t, "beta", "shared.example", "*.w.example", "b.example")
	for _, order := range [][]Record{{a, b}, {b, a}} {
		h := NewHosts(order, false)
		for host, want := range map[string]string{"shared.example": "alpha", "x.w.example": "alpha", "b.example": "beta"} {
			if got, _ := h.Match(host); got != want {
				t.Errorf("order %s,%s: Match(%q) = %q, want %q", order[0].Name, order[1].Name, host, got, want)
			}
		}
	}
}

func TestImplicitDefault(t *testing.T) {
	blog := mustRecord(t, "blog", "blog.example")
	if !ImplicitDefault([]Record{blog}, true) {
		t.Error("site/current without sites/default: the default site should exist implicitly")
	}
	if ImplicitDefault([]Record{blog}, false) {
		t.Error("no site/current: no implicit default")
	}
	def := mustRecord(t, DefaultSite, "www.example")
	if ImplicitDefault([]Record{blog, def}, true) {
		t.Error("sites/default written: the default site claims only its hosts")
	}
	h := NewHosts([]Record{blog, def}, ImplicitDefault([]Record{blog, def}, true))
	if s, ok := h.Match("other.example"); ok {
		t.Errorf("an explicit default site took an unclaimed host: %q", s)
	}
	if s, _ := h.Match("www.example"); s != DefaultSite {
		t.Errorf("Match(www.example) = %q, want default", s)
	}
}

func TestClaimed(t *testing.T) {
	records := []Record{
		mustRecord(t, "blog", "blog.example", "*.x.example"),
		mustRecord(t, "docs", "docs.example"),
	}
	got := Claimed(records, mustRecord(t, "new", "docs.example", "*.x.example", "a.x.example", "free.example"))
	want := []Claim{{"*.x.example", "blog"}, {"docs.example", "docs"}}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("Claimed = %v, want %v", got, want)
	}
	if c := Claimed(records, mustRecord(t, "blog", "blog.example", "new.example")); len(c) != 0 {
		t.Fatalf("a site's own hosts are claims against it: %v", c)
	}
}

func TestNormalizeHostAllocs(t *testing.T) {
	h := NewHosts([]Record{mustRecord(t, "blog", "blog.example.com")}, true)
	if n := testing.AllocsPerRun(100, func() { h.Match("www.blog.example.com:443") }); n != 0 {
		t.Errorf("Match of a lower-case host allocates %v times", n)
	}
}

// FuzzMatch checks Match against its definition: the site it returns claims the normalised
// host exactly, or by a wildcard of its parent when no site claims it exactly, or is the
// implicit default when no site claims it at all; and it never answers for a host some
// site claims with another site.
func FuzzMatch(f *testing.F) {
	f.Add("blog.example.com", "blog.example.com", "*.example.com", true)
	f.Add("A.Example.com.:80", "a.example.com", "*.b.example", false)
	f.Add("[::1]:443", "x", "*.y", true)
	f.Fuzz(func(t *testing.T, host, h1, h2 string, implicit bool) {
		var records []Record
		for i, hs := range []string{h1, h2} {
			if r, err := NewRecord([]string{"one", "two"}[i], []string{hs}); err == nil {
				records = append(records, r)
			}
		}
		got, ok := NewHosts(records, implicit).Match(host)
		n := NormalizeHost(host)
		var exact, wild string
		for _, r := range records {
			for _, rh := range r.Hosts {
				if rh == n && exact == "" {
					exact = r.Name
				}
				if p, isWild := strings.CutPrefix(rh, "*."); isWild && wild == "" {
					if _, parent, cut := strings.Cut(n, "."); cut && parent == p && isMatchableHost(n) && !strings.Contains(n[:len(n)-len(parent)-1], ".") {
						wild = r.Name
					}
				}
			}
		}
		want := exact
		if want == "" || !isMatchableHost(n) {
			want = ""
			if isMatchableHost(n) {
				want = wild
			}
		}
		if want == "" && implicit {
			want = DefaultSite
		}
		if got != want || ok != (want != "") {
			t.Fatalf("Match(%q) with %v = %q, %v; want %q", host, records, got, ok, want)
		}
	})
}
