package publish

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dt-cdn/dt/dt"
	"github.com/dt-cdn/dt/site"
)

// TestSiteCommands adds, sets, lists and removes sites on a network whose one site was
// published as the previous release publishes (site/current only): that site is listed as the
// implicit default, and every refusal names what it refuses.
func TestSiteCommands(t *testing.T) {
	keys, addr, _ := testNetwork(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	opts := NetworkOptions{Keys: keys, Peers: []string{addr}, HeartbeatInterval: testBeat, Wait: 20 * time.Second, Node: dt.LocalConfig()}

	if list, err := Sites(ctx, opts); err != nil || len(list) != 0 {
		t.Fatalf("an empty network lists %v, %v", list, err)
	}
	dir := t.TempDir()
	writeSite(t, dir, map[string]string{"index.html": "<h1>default</h1>"})
	first := publishDir(t, ctx, dir, opts)

	list, err := Sites(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].Name != site.DefaultSite || !list[0].Implicit || list[0].Current == nil || *list[0].Current != first.Deploy {
		t.Fatalf("after a publish of the previous release's form: %+v", list)
	}

	r, err := AddSite(ctx, "blog", []string{"Blog.Example.com.", "*.blog.example.com", "blog.example.com"}, opts)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(r.Hosts, []string{"*.blog.example.com", "blog.example.com"}) {
		t.Fatalf("hosts not normalised: %v", r.Hosts)
	}
	if _, err := AddSite(ctx, "blog", []string{"other.example"}, opts); !errors.Is(err, ErrSiteExists) {
		t.Fatalf("adding blog twice: %v", err)
	}
	if _, err := AddSite(ctx, site.DefaultSite, nil, opts); !errors.Is(err, ErrSiteExists) {
		t.Fatalf("adding the implicit default site: %v", err)
	}
	_, err = AddSite(ctx, "docs", []string{"docs.example", "blog.example.com"}, opts)
	if !errors.Is(err, ErrHostTaken) || !strings.Contains(err.Error(), "blog.example.com (site blog)") {
		t.Fatalf("a host of blog for docs: %v", err)
	}
	if _, err := AddSite(ctx, "a--b", nil, opts); !errors.Is(err, site.ErrInvalidRecord) {
		t.Fatalf("a name with --: %v", err)
	}
	if _, err := SetSite(ctx, "nope", []string{"x.example"}, opts); !errors.Is(err, ErrNoSite) {
		t.Fatalf("setting a site that does not exist: %v", err)
	}
	if _, err := SetSite(ctx, "blog", []string{"www.blog.example.com"}, opts); err != nil {
		t.Fatal(err)
	}
	// blog gave blog.example.com up: docs may take it now.
	if _, err := AddSite(ctx, "docs", []string{"blog.example.com"}, opts); err != nil {
		t.Fatal(err)
	}
	if _, err := SetSite(ctx, site.DefaultSite, []string{"www.example.com"}, opts); err != nil {
		t.Fatal(err)
	}

	list, err = Sites(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range list {
		got = append(got, s.Name+"="+strings.Join(s.Hosts, ",")+"/"+map[bool]string{true: "implicit", false: "record"}[s.Implicit])
	}
	want := []string{"blog=www.blog.example.com/record", "default=www.example.com/record", "docs=blog.example.com/record"}
	if !slices.Equal(got, want) {
		t.Fatalf("sites = %v, want %v", got, want)
	}

	if _, err := RemoveSite(ctx, "blog", opts); err != nil {
		t.Fatal(err)
	}
	if _, err := RemoveSite(ctx, "blog", opts); !errors.Is(err, ErrNoSite) {
		t.Fatalf("removing blog twice: %v", err)
	}
	list, err = Sites(ctx, opts)
	if err != nil || len(list) != 2 || list[0].Name != site.DefaultSite || *list[0].Current != first.Deploy {
		t.Fatalf("after removing blog: %+v, %v", list, err)
	}
}
