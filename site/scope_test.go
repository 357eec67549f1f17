package site_test

import (
	"errors"
	"testing"

	"github.com/dt-cdn/dt/dt"
	"github.com/dt-cdn/dt/site"
)

// TestPublisherScope: a site's publisher key may write the site's own pointer and History and
// add blobs and manifests; not another site's keys, the site list, grants or DNS zones, and it
// deletes no blob or manifest. Only the default site's key covers site/current.
func TestPublisherScope(t *testing.T) {
	def := dt.Grant{Key: make([]byte, 32), Scope: site.PublisherScope(site.DefaultSite)}
	if err := def.Covers(site.CurrentKey, dt.KindPut, 1); err != nil {
		t.Errorf("default site: %s: %v", site.CurrentKey, err)
	}
	blog := dt.Grant{Key: make([]byte, 32), Scope: site.PublisherScope("blog")}
	for _, key := range []string{site.CurrentKeyOf("blog"), site.HistoryKey("blog"), site.DeployKey(site.DeployIDOf([]byte("m"))), "blob/ab"} {
		if err := blog.Covers(key, dt.KindPut, 1); err != nil {
			t.Errorf("blog's key may not put %s: %v", key, err)
		}
	}
	for _, key := range []string{site.CurrentKey, site.RecordKey("blog"), site.CurrentKeyOf("docs"), "grants/x", "dns/example.com"} {
		if err := blog.Covers(key, dt.KindPut, 1); !errors.Is(err, dt.ErrOutsideGrant) {
			t.Errorf("blog's key may put %s: %v", key, err)
		}
	}
	for _, key := range []string{"deploy/ab", "blob/ab"} {
		if err := blog.Covers(key, dt.KindDelete, 1); !errors.Is(err, dt.ErrOutsideGrant) {
			t.Errorf("blog's key may delete %s: %v", key, err)
		}
	}
}
