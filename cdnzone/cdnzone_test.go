package cdnzone

import (
	"errors"
	"strings"
	"testing"
)

const zone = "cdn.example.com"

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		host string
		want Name
	}{
		{"ams.cdn.example.com", Name{Kind: KindLabel, Label: "ams"}},
		{"Blog.CDN.Example.com.", Name{Kind: KindLabel, Label: "blog"}},
		{"blog--ams.cdn.example.com", Name{Kind: KindSiteEdge, Site: "blog", Edge: "ams"}},
		{"blog--e-0123456789ab.cdn.example.com", Name{Kind: KindSiteEdge, Site: "blog", Edge: "e-0123456789ab"}},
		{"0123456789ab--blog.cdn.example.com", Name{Kind: KindPreview, Deploy: "0123456789ab", Site: "blog"}},
		{"0123456789AB--blog.cdn.example.com", Name{Kind: KindPreview, Deploy: "0123456789ab", Site: "blog"}},
		{"0123456789a--blog.cdn.example.com", Name{Kind: KindSiteEdge, Site: "0123456789a", Edge: "blog"}},
	} {
		got, err := Parse(tc.host, zone)
		if err != nil || got != tc.want {
			t.Errorf("Parse(%q) = %+v, %v; want %+v", tc.host, got, err, tc.want)
			continue
		}
		if back := got.String(zone); back != strings.ToLower(strings.TrimSuffix(tc.host, ".")) {
			t.Errorf("String of %q = %q", tc.host, back)
		}
	}
	for _, host := range []string{
		"cdn.example.com", "example.com", "a.b.cdn.example.com", "xcdn.example.com", "a.cdn.example.org",
		"a---b.cdn.example.com", "a--b--c.cdn.example.com", "--b.cdn.example.com", "a--.cdn.example.com",
		"-a.cdn.example.com", "a_b.cdn.example.com", strings.Repeat("a", 64) + ".cdn.example.com",
		"ams.cdn.example.com:443", "",
	} {
		if n, err := Parse(host, zone); !errors.Is(err, ErrNotInZone) {
			t.Errorf("Parse(%q) = %+v, %v; want ErrNotInZone", host, n, err)
		}
	}
	if _, err := Parse("ams.cdn.example.com", ""); !errors.Is(err, ErrNotInZone) {
		t.Errorf("Parse with no zone: %v", err)
	}
}

func TestBuild(t *testing.T) {
	if got := SiteEdge("blog", "ams", zone); got != "blog--ams.cdn.example.com" {
		t.Errorf("SiteEdge = %q", got)
	}
	if got := Preview(strings.Repeat("ab", 32), "blog", zone); got != "abababababab--blog.cdn.example.com" {
		t.Errorf("Preview = %q", got)
	}
	if got := Single("ams", zone); got != "ams.cdn.example.com" {
		t.Errorf("Single = %q", got)
	}
	if CheckFits(strings.Repeat("a", 30), strings.Repeat("b", 31)) != nil || CheckFits(strings.Repeat("a", 31), strings.Repeat("b", 31)) == nil {
		t.Error("CheckFits: the bound is one label of 63")
	}
}

func TestLabels(t *testing.T) {
	const (
		a = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		b = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
		c = "cccccccccccccccccccccccccccccccc"
		d = "dddddddddddddddddddddddddddddddd"
		e = "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee"
	)
	l := NewLabels([]Edge{
		{Node: a, Name: "AMS-1"},
		{Node: b, Name: "nyc"},
		{Node: c, Name: "nyc"},
		{Node: d, Name: "Tokyo Edge"},
		{Node: e, Name: "e-dddddddddddd"},
	})
	for node, want := range map[string]string{a: "ams-1", b: "e-bbbbbbbbbbbb", c: "e-cccccccccccc", d: "e-dddddddddddd", e: "e-eeeeeeeeeeee"} {
		if got, ok := l.Label(node); !ok || got != want {
			t.Errorf("Label(%s) = %q, %v; want %q", node[:4], got, ok, want)
		}
		if got, ok := l.Node(want); !ok || got != node {
			t.Errorf("Node(%q) = %s, %v", want, got, ok)
		}
	}
	if got, ok := l.Node("e-aaaaaaaaaaaa"); !ok || got != a {
		t.Errorf("the derived label of a named edge: %s, %v", got, ok)
	}
	if _, ok := l.Node("nyc"); ok {
		t.Error("a Name two edges share names one of them")
	}
	if s := l.Shared(); len(s) != 1 || len(s["nyc"]) != 2 {
		t.Errorf("Shared = %v", s)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"ams.cdn.example.com", "blog--ams.cdn.example.com", "0123456789ab--blog.cdn.example.com", "A.CDN.EXAMPLE.COM.", "a--b--c.cdn.example.com"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, host string) {
		n, err := Parse(host, zone)
		if err != nil {
			return
		}
		s := n.String(zone)
		again, err := Parse(s, zone)
		if err != nil || again != n {
			t.Fatalf("%q parsed to %+v, printed as %q, parsed again to %+v, %v", host, n, s, again, err)
		}
		if s != strings.ToLower(strings.TrimSuffix(host, ".")) {
			t.Fatalf("%q printed back as %q", host, s)
		}
		first := strings.TrimSuffix(s, "."+zone)
		if strings.Contains(first, ".") || len(first) > MaxLabel {
			t.Fatalf("%q: %q is not one label", host, first)
		}
	})
}
