package publish

import (
	"errors"
	"slices"
	"testing"

	"github.com/dt-cdn/dt/site"
)

// TestSiteUpdate checks what dt site add and dt site set make of a record: set changes only
// what it is given, settings merge into the site's own, and the implicit default site takes
// settings only with hosts of its own.
func TestSiteUpdate(t *testing.T) {
	yes, no := true, false
	blog := site.Record{V: site.RecordVersion, Name: "blog", Hosts: []string{"blog.example"}, Settings: &site.Settings{SPA: &yes, Keep: 3}}
	records := []site.Record{blog}

	r, err := siteUpdate(records, true, "blog", SiteSpec{Settings: site.Settings{CleanURLs: &yes, SPA: &no}}, true)
	if err != nil || !slices.Equal(r.Hosts, blog.Hosts) || r.Settings.String() != "clean-urls,no-spa,keep=3" {
		t.Fatalf("set blog --clean-urls --spa=false: %+v (%s), %v", r, r.Settings, err)
	}
	r, err = siteUpdate(records, true, "blog", SiteSpec{Hosts: []string{"www.blog.example"}, SetHosts: true}, true)
	if err != nil || !slices.Equal(r.Hosts, []string{"www.blog.example"}) || r.Settings.String() != "spa,keep=3" {
		t.Fatalf("set blog --host: %+v (%s), %v", r, r.Settings, err)
	}
	r, err = siteUpdate(records, true, "docs", SiteSpec{Hosts: []string{"docs.example"}}, false)
	if err != nil || r.Settings != nil {
		t.Fatalf("add docs without settings: %+v, %v; want no settings", r, err)
	}
	if b, _ := r.Marshal(); string(b) != `{"v":1,"name":"docs","hosts":["docs.example"]}` {
		t.Fatalf("a site without settings marshals as %s", b)
	}
	if _, err := siteUpdate(records, true, "blog", SiteSpec{}, false); !errors.Is(err, ErrSiteExists) {
		t.Fatalf("add blog again: %v", err)
	}
	if _, err := siteUpdate(records, true, "docs", SiteSpec{}, true); !errors.Is(err, ErrNoSite) {
		t.Fatalf("set a site that does not exist: %v", err)
	}
	if _, err := siteUpdate(records, true, site.DefaultSite, SiteSpec{Settings: site.Settings{SPA: &yes}}, true); !errors.Is(err, ErrNoSite) {
		t.Fatalf("settings for the implicit default site without hosts: %v", err)
	}
	r, err = siteUpdate(records, true, site.DefaultSite, SiteSpec{Hosts: []string{"example.com"}, SetHosts: true, Settings: site.Settings{SPA: &yes}}, true)
	if err != nil || r.Settings.String() != "spa" {
		t.Fatalf("settings for the implicit default site with hosts: %+v, %v", r, err)
	}
	if _, err := siteUpdate(records, true, "blog", SiteSpec{Settings: site.Settings{Keep: site.MaxKeep + 1}}, true); !errors.Is(err, site.ErrInvalidRecord) {
		t.Fatalf("keep over MaxKeep: %v", err)
	}
}

// TestScanWithSiteSettings checks the order of precedence of a deploy's serving settings: the
// publisher's flag, then the site's record, then the previous deploy.
func TestScanWithSiteSettings(t *testing.T) {
	yes, no := true, false
	set := site.Settings{SPA: &yes, CleanURLs: &no}
	given := ScanOptions{SPA: false, CleanURLs: true}.withSiteSettings(set)
	if given.SPA || !given.CleanURLs || given.KeepSPA || given.KeepCleanURLs {
		t.Fatalf("flags given were overridden: %+v", given)
	}
	left := ScanOptions{KeepSPA: true, KeepCleanURLs: true, CleanURLs: true}.withSiteSettings(set)
	if !left.SPA || left.CleanURLs || left.KeepSPA || left.KeepCleanURLs {
		t.Fatalf("the site's settings did not apply: %+v", left)
	}
	none := ScanOptions{KeepSPA: true, KeepCleanURLs: true}.withSiteSettings(site.Settings{})
	if !none.KeepSPA || !none.KeepCleanURLs {
		t.Fatalf("a site without settings took the previous deploy's away: %+v", none)
	}
}
