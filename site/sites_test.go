package site_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/dt-cdn/dt/site"
)

func TestHostsMatch(t *testing.T) {
	records := []site.Record{
		{V: 1, Name: "docs", Hosts: []string{"*.docs.example.com", "docs.example.com"}},
		{V: 1, Name: "blog", Hosts: []string{"blog.example.com", "www.blog.example.com", "shared.example.com"}},
		{V: 1, Name: "alpha", Hosts: []string{"shared.example.com"}}, // sorts first: wins the conflict
	}
	for _, implicit := range []bool{false, true} {
		h := site.NewHosts(records, implicit)
		cases := []struct {
			host, site string
			ok         bool
		}{
			{"blog.example.com", "blog", true},
			{"BLOG.example.com.:8443", "blog", true},
			{"www.blog.example.com", "blog", true},
			{"docs.example.com", "docs", true},
			{"v2.docs.example.com", "docs", true},
			{"a.v2.docs.example.com", "", false}, // a wildcard covers one label only
			{"shared.example.com", "alpha", true},
			{"other.example.org", "", false},
			{"", "", false},
		}
		for _, c := range cases {
			want, ok := c.site, c.ok
			if !ok && implicit {
				want, ok = site.DefaultSite, true
			}
			if got, gotOK := h.Match(c.host); got != want || gotOK != ok {
				t.Errorf("implicit %v: Match(%q) = %q, %v; want %q, %v", implicit, c.host, got, gotOK, want, ok)
			}
		}
	}
	// With a record of its own, the default site claims only its hosts.
	h := site.NewHosts(append(records, site.Record{V: 1, Name: site.DefaultSite, Hosts: []string{"www.example.com"}}), true)
	if got, ok := h.Match("other.example.org"); ok {
		t.Errorf("default with a record still catches all: %q", got)
	}
	if got, _ := h.Match("www.example.com"); got != site.DefaultSite {
		t.Errorf("default's own host went to %q", got)
	}
}

func TestParseRecord(t *testing.T) {
	good := `{"v":1,"name":"blog","hosts":["blog.example.com","*.docs.example.com"]}`
	r, err := site.ParseRecord([]byte(good))
	if err != nil || r.Name != "blog" || len(r.Hosts) != 2 {
		t.Fatalf("%+v, %v", r, err)
	}
	if b, err := r.Marshal(); err != nil || string(b) != good {
		t.Errorf("Marshal: %s, %v", b, err)
	}
	for _, bad := range []string{
		`{"v":2,"name":"blog","hosts":[]}`,
		`{"v":1,"name":"Blog","hosts":[]}`,
		`{"v":1,"name":"a--b","hosts":[]}`,
		`{"v":1,"name":"-a","hosts":[]}`,
		`{"v":1,"name":"blog","hosts":["Blog.example.com"]}`,
		`{"v":1,"name":"blog","hosts":["blog.example.com:80"]}`,
		`{"v":1,"name":"blog","hosts":["blog.example.com."]}`,
		`{"v":1,"name":"blog","hosts":["*.*.example.com"]}`,
		`{"v":1,"name":"blog","hosts":["a.example","a.example"]}`,
		`{"v":1,"name":"blog","hosts":[],"extra":1}`,
		`{"v":1,"name":"blog","hosts":[]} {}`,
	} {
		if _, err := site.ParseRecord([]byte(bad)); !errors.Is(err, site.ErrInvalidRecord) {
			t.Errorf("%s: %v", bad, err)
		}
	}
	many := site.Record{V: 1, Name: "big"}
	for i := range site.MaxHosts + 1 {
		many.Hosts = append(many.Hosts, "h"+string(rune('a'+i%26))+string(rune('a'+i/26))+".example")
	}
	if _, err := many.Marshal(); !errors.Is(err, site.ErrInvalidRecord) {
		t.Errorf("%d hosts: %v", len(many.Hosts), err)
	}
}

func TestSiteKeys(t *testing.T) {
	if k := site.CurrentKeyOf(site.DefaultSite); k != site.CurrentKey {
		t.Errorf("default's current key %q", k)
	}
	for _, name := range []string{"default", "blog"} {
		if got, ok := site.ParseCurrentKey(site.CurrentKeyOf(name)); !ok || got != name {
			t.Errorf("current key of %s: %q, %v", name, got, ok)
		}
		if got, ok := site.ParseRecordKey(site.RecordKey(name)); !ok || got != name {
			t.Errorf("record key of %s: %q, %v", name, got, ok)
		}
	}
	for _, k := range []string{"site/default/current", "site/Blog/current", "site/a/b/current", "deploy/x", "sites/"} {
		if _, ok := site.ParseCurrentKey(k); ok {
			t.Errorf("ParseCurrentKey(%q) accepted", k)
		}
	}
}

// FuzzParseRecord checks that whatever ParseRecord accepts validates, and that its Marshal parses
// back to the same record.
func FuzzParseRecord(f *testing.F) {
	f.Add([]byte(`{"v":1,"name":"blog","hosts":["blog.example.com","*.docs.example.com"]}`))
	f.Add([]byte(`{"v":1,"name":"a","hosts":[]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := site.ParseRecord(b)
		if err != nil {
			return
		}
		out, err := r.Marshal()
		if err != nil {
			t.Fatalf("accepted record does not marshal: %v", err)
		}
		r2, err := site.ParseRecord(out)
		if err != nil {
			t.Fatalf("marshalled record does not parse: %v", err)
		}
		out2, _ := r2.Marshal()
		if !bytes.Equal(out, out2) {
			t.Fatalf("round trip: %s != %s", out, out2)
		}
		h := site.NewHosts([]site.Record{r}, false)
		for _, host := range r.Hosts {
			if host[0] == '*' {
				host = "x" + host[1:]
			}
			if got, ok := h.Match(host); !ok || got != r.Name {
				t.Fatalf("host %q of %s matched %q, %v", host, r.Name, got, ok)
			}
		}
	})
}

// FuzzMatch checks Match on any Host a client may send against a reference: the normal form has
// no upper-case letter, and the site matched is the one the reference rules give.
func FuzzMatch(f *testing.F) {
	h := site.NewHosts([]site.Record{
		{V: 1, Name: "blog", Hosts: []string{"blog.example.com"}},
		{V: 1, Name: "docs", Hosts: []string{"*.docs.example.com"}},
	}, true)
	for _, s := range []string{"blog.example.com", "BLOG.example.com.:443", "a.docs.example.com", "[::1]:80", "", ":", "."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, host string) {
		n := site.NormalizeHost(host)
		if strings.ToLower(n) != n {
			t.Fatalf("NormalizeHost(%q) = %q", host, n)
		}
		want := site.DefaultSite
		if _, parent, _ := strings.Cut(n, "."); n == "blog.example.com" {
			want = "blog"
		} else if parent == "docs.example.com" {
			want = "docs"
		}
		if got, ok := h.Match(host); !ok || got != want {
			t.Fatalf("Match(%q) = %q, %v; want %q", host, got, ok, want)
		}
	})
}
