package deploy

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/dt-cdn/dt/blobs"
	"github.com/dt-cdn/dt/dt"
	"github.com/dt-cdn/dt/internal/testkit/wait"
	"github.com/dt-cdn/dt/site"
)

// putSite writes a site's record (for a site other than the default) and current pointer.
func putSite(t *testing.T, ctx context.Context, master *dt.Node, name string, hosts []string, m *site.Manifest, id site.DeployID) {
	t.Helper()
	body, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if err := master.Put(ctx, site.DeployKey(id), body); err != nil {
		t.Fatal(err)
	}
	if hosts != nil {
		rec, err := site.Record{V: 1, Name: name, Hosts: hosts}.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if err := master.Put(ctx, site.RecordKey(name), rec); err != nil {
			t.Fatal(err)
		}
	}
	cur, _ := site.Current{Deploy: id, Time: time.Now()}.Marshal()
	if err := master.Put(ctx, site.CurrentKeyOf(name), cur); err != nil {
		t.Fatal(err)
	}
}

// TestSitesFollowedApart follows three sites over the network: each switches only once every
// blob of its own deploy is on disk, a blob two sites share is stored once and outlives the
// first site that drops it, and a site whose record goes is no longer followed.
func TestSitesFollowedApart(t *testing.T) {
	var mu sync.Mutex
	var hosts *site.Hosts
	master, f, _ := networkWith(t, func(c *Config) {
		c.OnSites = func(h *site.Hosts) { mu.Lock(); hosts = h; mu.Unlock() }
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	mDef, idDef, objDef := makeDeploy(t, 2)
	mBlog, idBlog, objBlog := makeDeploy(t, 3)
	mDocs, _, objDocs := makeDeploy(t, 2)
	var shared blobs.Hash
	for _, file := range mBlog.Files { // one file of the blog is also in the docs
		mDocs.Files["/shared.bin"], shared = file, file.Hash
		break
	}
	idDocs, _ := mDocs.ID()
	putSite(t, ctx, master, site.DefaultSite, nil, mDef, idDef)
	putSite(t, ctx, master, "blog", []string{"blog.example.com"}, mBlog, idBlog)
	putSite(t, ctx, master, "docs", []string{"*.docs.example.com"}, mDocs, idDocs)
	putBlobs := func(objs map[blobs.Hash][]byte) {
		for h, obj := range objs {
			if err := master.Put(ctx, site.BlobKey(h), obj); err != nil {
				t.Fatal(err)
			}
		}
	}
	status := func(name string) Status {
		for _, s := range f.Sites() {
			if s.Site == name {
				return s.Status
			}
		}
		return Status{}
	}
	wait.For(t, 10*time.Second, func() error {
		if s := status("docs"); s.Target != idDocs || s.MissingBlobs != 3 {
			return fmt.Errorf("docs %+v", s)
		}
		return nil
	})
	putBlobs(objDocs) // the docs lack only the blob they share with the blog
	putBlobs(objDef)
	wait.For(t, 10*time.Second, func() error {
		if !f.Status().Synced || status("docs").MissingBlobs != 1 {
			return fmt.Errorf("default %+v, docs %+v", f.Status(), status("docs"))
		}
		return nil
	})
	if _, ok := f.ActiveOf("docs"); ok {
		t.Fatal("docs switched without every blob")
	}
	putBlobs(objBlog)
	wait.For(t, 10*time.Second, func() error {
		for _, s := range f.Sites() {
			if !s.Synced {
				return fmt.Errorf("%s: %+v", s.Site, s.Status)
			}
		}
		if n := len(f.Sites()); n != 3 {
			return fmt.Errorf("%d sites", n)
		}
		return nil
	})
	mu.Lock()
	if got := hosts.Names(); !slices.Equal(got, []string{"blog", site.DefaultSite, "docs"}) {
		t.Errorf("host table names %v", got)
	}
	if name, _ := hosts.Match("x.docs.example.com"); name != "docs" {
		t.Errorf("x.docs.example.com → %q", name)
	}
	if name, _ := hosts.Match("elsewhere.example"); name != site.DefaultSite {
		t.Errorf("elsewhere.example → %q", name)
	}
	mu.Unlock()

	// The blog goes: its deploy and blobs are collected, except the blob the docs still serve.
	if err := master.Delete(ctx, site.RecordKey("blog")); err != nil {
		t.Fatal(err)
	}
	if err := master.Delete(ctx, site.DeployKey(idBlog)); err != nil {
		t.Fatal(err)
	}
	for h := range objBlog {
		if err := master.Delete(ctx, site.BlobKey(h)); err != nil {
			t.Fatal(err)
		}
	}
	wait.For(t, 10*time.Second, func() error {
		if _, ok := f.ActiveOf("blog"); ok || len(f.Sites()) != 2 {
			return fmt.Errorf("blog still followed: %+v", f.Sites())
		}
		for h := range objBlog {
			if h != shared && f.cfg.Blobs.Has(h) {
				return fmt.Errorf("blob %s of the removed site still stored", h.Short())
			}
		}
		return nil
	})
	if !f.cfg.Blobs.Has(shared) {
		t.Fatal("the blob the docs share with the removed blog was deleted")
	}
	mu.Lock()
	if name, _ := hosts.Match("blog.example.com"); name != site.DefaultSite {
		t.Errorf("blog.example.com after removal → %q, want the default's catch-all", name)
	}
	mu.Unlock()
}

// TestRecordRefused: records that do not parse, or name another site than their key, are
// refused and change nothing.
func TestRecordRefused(t *testing.T) {
	f, _ := newFollower(t)
	for key, body := range map[string]string{
		site.RecordKey("blog"): `{"v":1,"name":"docs","hosts":[]}`,
		site.RecordKey("x"):    `{"v":1,"name":"x","hosts":["A.com"]}`,
		"site/blog/current":    `{}`,
	} {
		if err := f.Handle(dt.Event{Type: dt.EventObjectAdded, Key: key, Object: []byte(body)}); err == nil {
			t.Errorf("%s: %s accepted", key, body)
		}
	}
	if len(f.Sites()) != 0 {
		t.Fatalf("sites %+v", f.Sites())
	}
}

// TestSiteRemovedInEveryOrder removes a served site (its record, its deploy's manifest and its
// blobs), the removals applied in every order the table may apply them: every blob of the site
// is deleted in the end, and the default site's blobs never are.
func TestSiteRemovedInEveryOrder(t *testing.T) {
	steps := []string{"record", "manifest", "blobs"}
	for _, order := range [][]int{{0, 1, 2}, {0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0}} {
		name := fmt.Sprint(steps[order[0]], ",", steps[order[1]], ",", steps[order[2]])
		t.Run(name, func(t *testing.T) {
			f, store := newFollower(t)
			handle := func(typ dt.EventType, key string, body []byte) {
				t.Helper()
				if err := f.Handle(dt.Event{Type: typ, Key: key, Object: body}); err != nil {
					t.Fatal(err)
				}
			}
			publish := func(name string, hosts []string) (site.DeployID, map[blobs.Hash][]byte) {
				m, id, objects := makeDeploy(t, 2)
				for h, obj := range objects {
					handle(dt.EventObjectAdded, site.BlobKey(h), obj)
				}
				body, _ := m.Marshal()
				handle(dt.EventObjectAdded, site.DeployKey(id), body)
				if hosts != nil {
					rec, _ := site.Record{V: 1, Name: name, Hosts: hosts}.Marshal()
					handle(dt.EventObjectAdded, site.RecordKey(name), rec)
				}
				cur, _ := site.Current{Deploy: id, Time: time.Now()}.Marshal()
				handle(dt.EventObjectAdded, site.CurrentKeyOf(name), cur)
				return id, objects
			}
			_, defObjects := publish(site.DefaultSite, nil)
			blogID, blogObjects := publish("blog", []string{"blog.example.com"})
			if _, ok := f.ActiveOf("blog"); !ok {
				t.Fatal("blog not active")
			}
			for _, step := range order {
				switch steps[step] {
				case "record":
					handle(dt.EventObjectRemoved, site.RecordKey("blog"), nil)
				case "manifest":
					handle(dt.EventObjectRemoved, site.DeployKey(blogID), nil)
				case "blobs":
					for h := range blogObjects {
						handle(dt.EventObjectRemoved, site.BlobKey(h), nil)
					}
				}
			}
			for h := range blogObjects {
				if store.Has(h) {
					t.Errorf("blob %s of the removed site still stored", h.Short())
				}
			}
			for h := range defObjects {
				if !store.Has(h) {
					t.Errorf("blob %s of the default site deleted", h.Short())
				}
			}
			if _, ok := f.ActiveOf("blog"); ok || len(f.Sites()) != 1 {
				t.Errorf("sites %+v", f.Sites())
			}
		})
	}
}

// TestNamedSitesClaimNoOtherHost follows a network of named sites only, no default site: after
// their pointers arrive and one of them is removed, a host no site claims is still claimed by no
// site, so the edge answers it 421 rather than hand it to a default site that serves nothing.
func TestNamedSitesClaimNoOtherHost(t *testing.T) {
	f, _ := newFollower(t)
	var hosts *site.Hosts
	f.cfg.OnSites = func(h *site.Hosts) { hosts = h }
	handle := func(typ dt.EventType, key string, body []byte) {
		t.Helper()
		if err := f.Handle(dt.Event{Type: typ, Key: key, Object: body}); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"blog", "docs"} {
		rec, _ := site.Record{V: 1, Name: name, Hosts: []string{name + ".example.com"}}.Marshal()
		handle(dt.EventObjectAdded, site.RecordKey(name), rec)
		_, id, _ := makeDeploy(t, 1)
		cur, _ := site.Current{Deploy: id, Time: time.Now()}.Marshal()
		handle(dt.EventObjectAdded, site.CurrentKeyOf(name), cur)
	}
	handle(dt.EventObjectRemoved, site.RecordKey("blog"), nil)
	for _, host := range []string{"blog.example.com", "unknown.example.com"} {
		if i, ok := hosts.Lookup(host); ok {
			t.Errorf("%s claimed by %s", host, hosts.Names()[i])
		}
	}
	if i, ok := hosts.Lookup("docs.example.com"); !ok || hosts.Names()[i] != "docs" {
		t.Errorf("docs.example.com: %d %t", i, ok)
	}
}

// TestReplacedRecordKeepsItsSite replaces a served site's record (dt site set), which reaches
// the follower as the old record's removal and then the new one's addition: while the table
// holds the record, the removal changes nothing, so the site is in every host table given and
// its deploy is never switched away from and back.
func TestReplacedRecordKeepsItsSite(t *testing.T) {
	f, _ := newFollower(t)
	var tables []*site.Hosts
	var switches []site.DeployID
	held := map[string]bool{}
	f.cfg.OnSites = func(h *site.Hosts) { tables = append(tables, h) }
	f.cfg.OnSwitch = func(a Active) { switches = append(switches, a.ID) }
	f.cfg.Held = func(key string) bool { return held[key] }
	handle := func(typ dt.EventType, key string, body []byte) {
		t.Helper()
		held[key] = typ == dt.EventObjectAdded
		if err := f.Handle(dt.Event{Type: typ, Key: key, Object: body}); err != nil {
			t.Fatal(err)
		}
	}
	m, id, objects := makeDeploy(t, 2)
	for h, obj := range objects {
		handle(dt.EventObjectAdded, site.BlobKey(h), obj)
	}
	body, _ := m.Marshal()
	handle(dt.EventObjectAdded, site.DeployKey(id), body)
	old, _ := site.Record{V: 1, Name: "blog", Hosts: []string{"blog.example.com"}}.Marshal()
	handle(dt.EventObjectAdded, site.RecordKey("blog"), old)
	cur, _ := site.Current{Deploy: id, Time: time.Now()}.Marshal()
	handle(dt.EventObjectAdded, site.CurrentKeyOf("blog"), cur)
	if len(switches) != 1 {
		t.Fatalf("switches %v, want the blog's deploy once", switches)
	}

	// The replacement as dt delivers it: the table holds the new record when the old one's
	// removal is handled.
	tables = nil
	if err := f.Handle(dt.Event{Type: dt.EventObjectRemoved, Key: site.RecordKey("blog"), Object: old}); err != nil {
		t.Fatal(err)
	}
	renewed, _ := site.Record{V: 1, Name: "blog", Hosts: []string{"blog.example.com", "new.example.com"}}.Marshal()
	handle(dt.EventObjectAdded, site.RecordKey("blog"), renewed)
	for i, h := range tables {
		if _, ok := h.Lookup("blog.example.com"); !ok {
			t.Errorf("host table %d of the replacement lacks the blog", i)
		}
	}
	if _, ok := tables[len(tables)-1].Lookup("new.example.com"); !ok {
		t.Errorf("the last host table lacks the new host")
	}
	if a, ok := f.ActiveOf("blog"); !ok || a.ID != id || len(switches) != 1 {
		t.Errorf("after the replacement: active %v %t, switches %v", a.ID, ok, switches)
	}

	// A removal the table agrees with takes the site away.
	handle(dt.EventObjectRemoved, site.RecordKey("blog"), renewed)
	if _, ok := tables[len(tables)-1].Lookup("blog.example.com"); ok {
		t.Errorf("the removed blog still claims its host")
	}
}

// TestRemovedCurrentPointer removes current pointers as dt delivers it: a pointer replaced by a
// publish (the table holds the new one when the old one's removal is handled) changes nothing;
// a named site whose pointer leaves for good has no current deploy (its status and the states a
// heartbeat reports from say none, as the table does) but keeps serving its last deploy while its
// record stays; the default site without a record leaves with its pointer, and a host no site
// claims is then claimed by none (421, not 503). A follower without Held ignores the removals.
func TestRemovedCurrentPointer(t *testing.T) {
	f, _ := newFollower(t)
	var hosts *site.Hosts
	held := map[string]bool{}
	f.cfg.OnSites = func(h *site.Hosts) { hosts = h }
	f.cfg.Held = func(key string) bool { return held[key] }
	handle := func(typ dt.EventType, key string, body []byte) {
		t.Helper()
		held[key] = typ == dt.EventObjectAdded
		if err := f.Handle(dt.Event{Type: typ, Key: key, Object: body}); err != nil {
			t.Fatal(err)
		}
	}
	publish := func(name string) (site.DeployID, []byte) {
		m, id, objects := makeDeploy(t, 2)
		for h, obj := range objects {
			handle(dt.EventObjectAdded, site.BlobKey(h), obj)
		}
		body, _ := m.Marshal()
		handle(dt.EventObjectAdded, site.DeployKey(id), body)
		cur, _ := site.Current{Deploy: id, Time: time.Now()}.Marshal()
		handle(dt.EventObjectAdded, site.CurrentKeyOf(name), cur)
		return id, cur
	}
	rec, _ := site.Record{V: 1, Name: "blog", Hosts: []string{"blog.example.com"}}.Marshal()
	handle(dt.EventObjectAdded, site.RecordKey("blog"), rec)
	blogID, blogCur := publish("blog")
	_, defCur := publish(site.DefaultSite)

	// A publish replaces the default pointer: removal (the table holds the new one), addition.
	if err := f.Handle(dt.Event{Type: dt.EventObjectRemoved, Key: site.CurrentKey, Object: defCur}); err != nil {
		t.Fatal(err)
	}
	if _, ok := hosts.Lookup("unknown.example.com"); !ok {
		t.Fatal("a replaced default pointer took the default site away")
	}
	defID, _ := publish(site.DefaultSite)
	if st := f.Status(); !st.Synced || st.Active != defID {
		t.Fatalf("default after a second publish: %+v", st)
	}

	handle(dt.EventObjectRemoved, site.CurrentKeyOf("blog"), blogCur)
	if st := f.StatusOf("blog"); !st.Target.IsZero() || st.Synced || st.Active != blogID {
		t.Errorf("blog without its pointer: %+v, want no target and its deploy still active", st)
	}
	if i, ok := hosts.Lookup("blog.example.com"); !ok || hosts.Names()[i] != "blog" {
		t.Error("the blog left with its pointer while its record stays")
	}
	if got, want := targets(f.Sites()), map[string]string{site.DefaultSite: defID.String()}; !maps.Equal(got, want) {
		t.Errorf("current deploys reported %v, the table's are %v", got, want)
	}

	handle(dt.EventObjectRemoved, site.CurrentKey, defCur)
	if _, ok := hosts.Lookup("unknown.example.com"); ok {
		t.Error("a host no site claims is still the default site's after its pointer left")
	}
	if _, ok := f.ActiveOf(site.DefaultSite); ok || len(f.Sites()) != 1 || f.Sites()[0].Site != "blog" {
		t.Errorf("sites after the default pointer left: %+v", f.Sites())
	}

	// Without Held a removal cannot be told from a publish's replacement: ignored.
	plain, _ := newFollower(t)
	cur, _ := site.Current{Deploy: blogID, Time: time.Now()}.Marshal()
	for _, ev := range []dt.Event{{Type: dt.EventObjectAdded, Key: site.CurrentKey, Object: cur}, {Type: dt.EventObjectRemoved, Key: site.CurrentKey}} {
		if err := plain.Handle(ev); err != nil {
			t.Fatal(err)
		}
	}
	if st := plain.Status(); st.Target != blogID {
		t.Errorf("a follower without Held dropped the target on a removal: %+v", st)
	}
}

// targets returns the current deploy of each site as the follower reports them, as
// heartbeat.CurrentsDigest takes them: sites without one left out.
func targets(sites []SiteStatus) map[string]string {
	out := map[string]string{}
	for _, s := range sites {
		if !s.Target.IsZero() {
			out[s.Site] = s.Target.String()
		}
	}
	return out
}
