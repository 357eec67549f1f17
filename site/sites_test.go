package site

import (
	"errors"
	"strings"
	"testing"
)

func TestHostsMatch(t *testing.T) {
	records := []Record{
		{V: 1, Name: "docs", Hosts: []string{"docs.example.com", "*.docs.example.com", "shared.example.com"}},
		{V: 1, Name: "blog", Hosts: []string{"blog.example.com", "www.blog.example.com", "shared.example.com"}},
	}
	for _, implicit := range []bool{false, true} {
		hosts := NewHosts(records, implicit)
		for _, c := range []struct {
			host, site string
			ok         bool
		}{
			{"blog.example.com", "blog", true},
			{"BLOG.Example.com.", "blog", true},
			{"blog.example.com:8443", "blog", true},
			{"www.blog.example.com", "blog", true},
			{"docs.example.com", "docs", true},
			{"v2.docs.example.com", "docs", true}, // one label under the wildcard
			{"a.v2.docs.example.com", "", false},  // two labels: not the wildcard's
			{"shared.example.com", "blog", true},  // two claims: the first name sorted wins
			{"example.com", "", false},
			{"127.0.0.1:80", "", false},
			{"[::1]:80", "", false},
		} {
			want, wantOK := c.site, c.ok
			if !wantOK && implicit {
				want, wantOK = DefaultSite, true
			}
			if got, ok := hosts.Match(c.host); got != want || ok != wantOK {
				t.Errorf("implicit=%v Match(%q) = %q, %v; want %q, %v", implicit, c.host, got, ok, want, wantOK)
			}
		}
	}
	// An explicit default record claims only its hosts.
	hosts := NewHosts(append(records, Record{V: 1, Name: DefaultSite, Hosts: []string{"www.example.com"}}), true)
	if _, ok := hosts.Match("other.example.com"); ok {
		t.Error("an explicit default site claims a host it does not name")
	}
	if got, _ := hosts.Match("www.example.com"); got != DefaultSite {
		t.Errorf("www.example.com: %q", got)
	}
	if got := strings.Join(hosts.Names(), ","); got != "blog,default,docs" {
		t.Errorf("Names = %s", got)
	}
}

func TestParseRecord(t *testing.T) {
	good := `{"v":1,"name":"blog","hosts":["blog.example.com","*.docs.example.com"]}`
	r, err := ParseRecord([]byte(good))
	if err != nil || r.Name != "blog" || len(r.Hosts) != 2 {
		t.Fatalf("ParseRecord(good) = %+v, %v", r, err)
	}
	if b, _ := r.Marshal(); string(b) != good {
		t.Errorf("Marshal = %s", b)
	}
	for _, bad := range []string{
		`{"v":2,"name":"blog","hosts":[]}`,
		`{"v":1,"name":"blog","hosts":[],"x":1}`,
		`{"v":1,"name":"Blog","hosts":[]}`,
		`{"v":1,"name":"-blog","hosts":[]}`,
		`{"v":1,"name":"my--blog","hosts":[]}`,
		`{"v":1,"name":"blog","hosts":["Blog.example.com"]}`,
		`{"v":1,"name":"blog","hosts":["blog.example.com."]}`,
		`{"v":1,"name":"blog","hosts":["blog.example.com:80"]}`,
		`{"v":1,"name":"blog","hosts":["*.*.example.com"]}`,
		`{"v":1,"name":"blog","hosts":["a.com","a.com"]}`,
		`{"v":1,"name":"blog","hosts":[]} {}`,
		`{"v":1,"name":"blog","hosts":["` + strings.Repeat("a.", 130) + `com"]}`,
	} {
		if _, err := ParseRecord([]byte(bad)); !errors.Is(err, ErrInvalidRecord) {
			t.Errorf("ParseRecord(%s): %v", bad, err)
		}
	}
	many := make([]string, MaxHosts+1)
	for i := range many {
		many[i] = strings.Repeat("a", i+1) + ".com"
	}
	if b, _ := (Record{V: 1, Name: "x", Hosts: many}).Marshal(); b != nil {
		if _, err := ParseRecord(b); !errors.Is(err, ErrInvalidRecord) {
			t.Errorf("%d hosts accepted: %v", len(many), err)
		}
	}
}

func TestSiteKeys(t *testing.T) {
	for _, name := range []string{DefaultSite, "blog"} {
		if got, ok := ParseCurrentKey(CurrentKeyOf(name)); !ok || got != name {
			t.Errorf("ParseCurrentKey(CurrentKeyOf(%q)) = %q, %v", name, got, ok)
		}
		if got, ok := ParseRecordKey(RecordKey(name)); !ok || got != name {
			t.Errorf("ParseRecordKey(RecordKey(%q)) = %q, %v", name, got, ok)
		}
	}
	for _, key := range []string{"site/default/current", "site/Blog/current", "site/a/b/current", "site/x", "deploy/x"} {
		if name, ok := ParseCurrentKey(key); ok {
			t.Errorf("ParseCurrentKey(%q) = %q", key, name)
		}
	}
}

// FuzzParseRecord checks that what ParseRecord accepts round-trips through Marshal, and that
// every host of an accepted record matches its site.
func FuzzParseRecord(f *testing.F) {
	f.Add([]byte(`{"v":1,"name":"blog","hosts":["blog.example.com","*.docs.example.com"]}`))
	f.Add([]byte(`{"v":1,"name":"a","hosts":[]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseRecord(b)
		if err != nil {
			return
		}
		out, err := r.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		r2, err := ParseRecord(out)
		if err != nil || r2.Name != r.Name || len(r2.Hosts) != len(r.Hosts) {
			t.Fatalf("round trip: %+v, %v", r2, err)
		}
		hosts := NewHosts([]Record{r}, false)
		for _, h := range r.Hosts {
			h = strings.Replace(h, "*", "x", 1)
			if got, ok := hosts.Match(h); !ok || got != r.Name {
				t.Fatalf("Match(%q) = %q, %v", h, got, ok)
			}
		}
	})
}

// FuzzHostsMatch checks that Match never claims a host for a table without it, and agrees on a
// host however it is spelled (case, port, trailing dot).
func FuzzHostsMatch(f *testing.F) {
	f.Add("Blog.Example.com.:443")
	f.Add("[::1]:80")
	hosts := NewHosts([]Record{{V: 1, Name: "blog", Hosts: []string{"blog.example.com", "*.example.org"}}}, false)
	f.Fuzz(func(t *testing.T, host string) {
		name, ok := hosts.Match(host)
		if ok != (name == "blog") {
			t.Fatalf("Match(%q) = %q, %v", host, name, ok)
		}
		n := NormalizeHost(host)
		if n2, ok2 := hosts.Match(strings.ToUpper(n) + "."); ok2 != ok || n2 != name {
			t.Fatalf("Match(%q) = %v but Match of its upper-case form = %v", host, ok, ok2)
		}
	})
}

// FuzzSiteKeys checks that a key parsed as a site's current pointer or record names a valid site
// whose key is that key again: no two spellings of one site's key.
func FuzzSiteKeys(f *testing.F) {
	for _, k := range []string{CurrentKey, "site/blog/current", "site/default/current", "sites/blog", "sites/", "site//current"} {
		f.Add(k)
	}
	f.Fuzz(func(t *testing.T, key string) {
		if name, ok := ParseCurrentKey(key); ok && (CheckSiteName(name) != nil || CurrentKeyOf(name) != key) {
			t.Fatalf("ParseCurrentKey(%q) = %q", key, name)
		}
		if name, ok := ParseRecordKey(key); ok && (CheckSiteName(name) != nil || RecordKey(name) != key) {
			t.Fatalf("ParseRecordKey(%q) = %q", key, name)
		}
	})
}
