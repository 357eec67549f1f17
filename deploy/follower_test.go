package deploy

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/andybalholm/brotli"
	"github.com/dt-cdn/dt/blobs"
	"github.com/dt-cdn/dt/dt"
	"github.com/dt-cdn/dt/internal/testkit/testnet"
	"github.com/dt-cdn/dt/internal/testkit/wait"
	"github.com/dt-cdn/dt/site"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// network starts a listening master and an edge node whose events feed a Follower.
func network(t *testing.T) (master *dt.Node, f *Follower, switches func() []site.DeployID) {
	t.Helper()
	return networkWith(t, nil)
}

// networkWith is network with a change to the follower's Config.
func networkWith(t *testing.T, change func(*Config)) (master *dt.Node, f *Follower, switches func() []site.DeployID) {
	t.Helper()
	keys, plain := testnet.Keys(t)
	master = testnet.Node(t, testnet.Options{Keys: keys, Master: true, Listen: true})
	testnet.Drain(master)

	store, err := blobs.Open(t.TempDir(), blobs.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	var mu sync.Mutex
	var seen []site.DeployID
	cfg := Config{Blobs: store, OnSwitch: func(a Active) {
		mu.Lock()
		seen = append(seen, a.ID)
		mu.Unlock()
		if got, _ := f.ActiveOf(a.Site); got.ID != a.ID { // callbacks may call back into the follower
			t.Errorf("ActiveOf during OnSwitch does not show the new deploy")
		}
	}}
	if change != nil {
		change(&cfg)
	}
	f, err = New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	edge := testnet.Node(t, testnet.Options{Keys: plain, Peers: []string{testnet.Addr(master)}})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range edge.Events() {
			if err := f.Handle(ev); err != nil {
				t.Errorf("follower: %v", err)
			}
		}
	}()
	t.Cleanup(func() { edge.Close(); <-done })
	return master, f, func() []site.DeployID {
		mu.Lock()
		defer mu.Unlock()
		return append([]site.DeployID(nil), seen...)
	}
}

// makeDeploy returns a manifest of n files with random content, and the blob objects to publish.
func makeDeploy(t *testing.T, n int) (*site.Manifest, site.DeployID, map[blobs.Hash][]byte) {
	t.Helper()
	m := &site.Manifest{Version: site.ManifestVersion, Created: time.Now().UTC().Truncate(time.Second), Files: map[string]site.File{}}
	objects := map[blobs.Hash][]byte{}
	for i := range n {
		raw := make([]byte, 1000+i*3000)
		rand.Read(raw)
		h := blobs.Sum(raw)
		obj, err := site.EncodeBlob(raw)
		if err != nil {
			t.Fatal(err)
		}
		objects[h] = obj
		m.Files[fmt.Sprintf("/f%d.bin", i)] = site.File{Hash: h, Size: int64(len(raw)), Type: "application/octet-stream"}
	}
	id, err := m.ID()
	if err != nil {
		t.Fatal(err)
	}
	return m, id, objects
}

func publishPointer(t *testing.T, ctx context.Context, master *dt.Node, m *site.Manifest, id site.DeployID) {
	t.Helper()
	body, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if err := master.Put(ctx, site.DeployKey(id), body); err != nil {
		t.Fatal(err)
	}
	cur, err := site.Current{Deploy: id, Time: time.Now()}.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if err := master.Put(ctx, site.CurrentKey, cur); err != nil {
		t.Fatal(err)
	}
}

// TestSwitchOnlyWhenEveryBlobIsHere publishes the manifest and the pointer before the blobs, then
// the blobs one at a time: the follower must not switch until the last one is on disk.
func TestSwitchOnlyWhenEveryBlobIsHere(t *testing.T) {
	master, f, switches := network(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	m, id, objects := makeDeploy(t, 5)
	publishPointer(t, ctx, master, m, id)
	wait.For(t, 10*time.Second, func() error {
		if s := f.Status(); s.Target != id || s.MissingBlobs != 5 {
			return fmt.Errorf("status %+v", s)
		}
		return nil
	})
	left := len(objects)
	for h, obj := range objects {
		if err := master.Put(ctx, site.BlobKey(h), obj); err != nil {
			t.Fatal(err)
		}
		left--
		want := left
		wait.For(t, 10*time.Second, func() error {
			if s := f.Status(); s.MissingBlobs != want {
				return fmt.Errorf("status %+v, want %d missing", s, want)
			}
			return nil
		})
		if left > 0 && len(switches()) != 0 {
			t.Fatalf("switched with %d blobs missing", left)
		}
	}
	wait.For(t, 10*time.Second, func() error {
		if got := switches(); len(got) != 1 || got[0] != id || !f.Status().Synced {
			return fmt.Errorf("switches %v, status %+v", got, f.Status())
		}
		return nil
	})

	// A second deploy that shares a blob with the first; then rolling back is instant (nothing
	// to fetch) and the shared blob is not deleted when the second deploy's objects go.
	m2, _, objects2 := makeDeploy(t, 2)
	for _, file := range m.Files {
		m2.Files["/shared.bin"] = file
		break
	}
	id2, _ := m2.ID()
	for h, obj := range objects2 {
		if err := master.Put(ctx, site.BlobKey(h), obj); err != nil {
			t.Fatal(err)
		}
	}
	publishPointer(t, ctx, master, m2, id2)
	wait.For(t, 10*time.Second, func() error {
		if a, _ := f.Active(); a.ID != id2 {
			return fmt.Errorf("active %v, want %v", a.ID, id2)
		}
		return nil
	})
	publishPointer(t, ctx, master, m, id) // rollback
	wait.For(t, 10*time.Second, func() error {
		if a, _ := f.Active(); a.ID != id {
			return fmt.Errorf("after rollback active %v", a.ID)
		}
		return nil
	})
	// The publisher collects a dropped deploy: its manifest first, then its blobs.
	if err := master.Delete(ctx, site.DeployKey(id2)); err != nil {
		t.Fatal(err)
	}
	for h := range objects2 {
		if err := master.Delete(ctx, site.BlobKey(h)); err != nil {
			t.Fatal(err)
		}
	}
	wait.For(t, 10*time.Second, func() error {
		for h := range objects2 {
			if f.cfg.Blobs.Has(h) {
				return fmt.Errorf("blob %s of the dropped deploy still stored", h.Short())
			}
		}
		return nil
	})
	for _, file := range m.Files {
		if !f.cfg.Blobs.Has(file.Hash) {
			t.Fatalf("a blob of the active deploy was deleted")
		}
	}
}

// newFollower returns a follower on a store of its own, fed by hand through Handle.
func newFollower(t *testing.T) (*Follower, *blobs.Store) {
	t.Helper()
	store, err := blobs.Open(t.TempDir(), blobs.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	f, err := New(Config{Blobs: store})
	if err != nil {
		t.Fatal(err)
	}
	return f, store
}

func TestRejectsForgedBlobObject(t *testing.T) {
	f, store := newFollower(t)
	obj, _ := site.EncodeBlob([]byte("real content"))
	other := blobs.Sum([]byte("claimed content"))
	if err := f.Handle(dt.Event{Type: dt.EventObjectAdded, Key: site.BlobKey(other), Object: obj}); err == nil {
		t.Fatal("a blob object under the wrong key was accepted")
	}
	if store.Has(other) || store.Has(blobs.Sum([]byte("real content"))) {
		t.Fatal("the mismatched blob was stored")
	}
}

// TestBlobRemovedBeforeItsManifest: records from one peer can be applied out of order, so a
// blob's removal may arrive while its manifest is still kept; the blob goes with the manifest.
func TestBlobRemovedBeforeItsManifest(t *testing.T) {
	f, store := newFollower(t)
	add := func(key string, body []byte) {
		t.Helper()
		if err := f.Handle(dt.Event{Type: dt.EventObjectAdded, Key: key, Object: body}); err != nil {
			t.Fatal(err)
		}
	}
	publish := func(m *site.Manifest, id site.DeployID, objects map[blobs.Hash][]byte) {
		for h, obj := range objects {
			add(site.BlobKey(h), obj)
		}
		body, _ := m.Marshal()
		add(site.DeployKey(id), body)
		cur, _ := site.Current{Deploy: id, Time: time.Now()}.Marshal()
		add(site.CurrentKey, cur)
	}
	old, oldID, oldObjects := makeDeploy(t, 1)
	publish(old, oldID, oldObjects)
	newer, newID, newObjects := makeDeploy(t, 1)
	publish(newer, newID, newObjects)
	if a, _ := f.Active(); a.ID != newID {
		t.Fatal("not on the newer deploy")
	}
	var h blobs.Hash
	for h = range oldObjects {
	}
	f.Handle(dt.Event{Type: dt.EventObjectRemoved, Key: site.BlobKey(h)})
	if !store.Has(h) {
		t.Fatal("a blob named by a kept manifest was deleted")
	}
	f.Handle(dt.Event{Type: dt.EventObjectRemoved, Key: site.DeployKey(oldID)})
	if store.Has(h) {
		t.Fatal("the blob stayed after its manifest went")
	}
}

// TestNestedManifestRef publishes a deploy whose manifest is stored as a reference of depth 1 (a
// reference to the chunks of a reference to the manifest's chunks), each level arriving after
// the one above it: the follower expands level by level and switches once the manifest and every
// blob are here. The chunks of both levels stay while the deploy does, even when their objects
// go first, and go with it.
func TestNestedManifestRef(t *testing.T) {
	master, f, switches := network(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	m, id, objects := makeDeploy(t, 3)
	body, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	chunkObjects := map[blobs.Hash][]byte{}
	split := func(b []byte, depth int) site.ManifestRef {
		r := site.ManifestRef{Depth: depth}
		for _, p := range [][]byte{b[:len(b)/3], b[len(b)/3 : 2*len(b)/3], b[2*len(b)/3:]} {
			h := blobs.Sum(p)
			obj, err := site.EncodeBlob(p)
			if err != nil {
				t.Fatal(err)
			}
			chunkObjects[h] = obj
			r.Chunks = append(r.Chunks, site.Chunk{Hash: h, Size: int64(len(p))})
		}
		return r
	}
	inner := split(body, 0)
	innerJSON, err := inner.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	outer := split(innerJSON, 1)
	outerJSON, err := outer.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	put := func(hs []blobs.Hash, from map[blobs.Hash][]byte) {
		t.Helper()
		for _, h := range hs {
			if err := master.Put(ctx, site.BlobKey(h), from[h]); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := master.Put(ctx, site.DeployKey(id), outerJSON); err != nil {
		t.Fatal(err)
	}
	cur, err := site.Current{Deploy: id, Time: time.Now()}.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if err := master.Put(ctx, site.CurrentKey, cur); err != nil {
		t.Fatal(err)
	}
	wait.For(t, 10*time.Second, func() error {
		if s := f.Status(); s.Target != id {
			return fmt.Errorf("status %+v", s)
		}
		return nil
	})
	put(outer.Hashes(), chunkObjects)
	put(inner.Hashes(), chunkObjects)
	wait.For(t, 10*time.Second, func() error {
		if s := f.Status(); s.MissingBlobs != 3 { // the manifest assembled; its blobs missing
			return fmt.Errorf("status %+v, want the manifest and 3 blobs missing", s)
		}
		return nil
	})
	if got := switches(); len(got) != 0 {
		t.Fatalf("switched with blobs missing: %v", got)
	}
	for h, obj := range objects {
		if err := master.Put(ctx, site.BlobKey(h), obj); err != nil {
			t.Fatal(err)
		}
	}
	wait.For(t, 10*time.Second, func() error {
		if got := switches(); len(got) != 1 || got[0] != id {
			return fmt.Errorf("switches %v", got)
		}
		return nil
	})

	// The chunk objects go first (records may apply in any order): the chunks stay for the
	// deploy; then the deploy goes, and they go with it.
	for h := range chunkObjects {
		if err := master.Delete(ctx, site.BlobKey(h)); err != nil {
			t.Fatal(err)
		}
	}
	wait.For(t, 10*time.Second, func() error {
		f.mu.Lock()
		defer f.mu.Unlock()
		if n := len(f.orphans); n != len(chunkObjects) {
			return fmt.Errorf("%d chunks kept as orphans, want %d", n, len(chunkObjects))
		}
		return nil
	})
	for h := range chunkObjects {
		if !f.cfg.Blobs.Has(h) {
			t.Fatalf("chunk %s deleted while its deploy is kept", h.Short())
		}
	}
	// A new deploy replaces it; then the old one is collected.
	replaceDeploy(t, ctx, master, f)
	if err := master.Delete(ctx, site.DeployKey(id)); err != nil {
		t.Fatal(err)
	}
	wait.For(t, 10*time.Second, func() error {
		for h := range chunkObjects {
			if f.cfg.Blobs.Has(h) {
				return fmt.Errorf("chunk %s of the collected deploy still stored", h.Short())
			}
		}
		return nil
	})
}

// replaceDeploy publishes a new one-file deploy, blobs first, and waits until f serves it.
func replaceDeploy(t *testing.T, ctx context.Context, master *dt.Node, f *Follower) {
	t.Helper()
	m, id, objects := makeDeploy(t, 1)
	for h, obj := range objects {
		if err := master.Put(ctx, site.BlobKey(h), obj); err != nil {
			t.Fatal(err)
		}
	}
	publishPointer(t, ctx, master, m, id)
	wait.For(t, 10*time.Second, func() error {
		if a, _ := f.Active(); a.ID != id {
			return fmt.Errorf("active %v, want %v", a.ID, id)
		}
		return nil
	})
}

// derivedFile builds a file that travels as its brotli variant alone (site.File.RawFrom) with
// derived zstd and gzip variants, and returns it with the brotli blob's object.
func derivedFile(t *testing.T, text string) (site.File, blobs.Hash, []byte) {
	t.Helper()
	raw := []byte(strings.Repeat(text, 200))
	var buf bytes.Buffer
	w := brotli.NewWriterLevel(&buf, 5)
	w.Write(raw)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	br := buf.Bytes()
	var d site.Deriver
	defer d.Close()
	f := site.File{Hash: blobs.Sum(raw), Size: int64(len(raw)), Type: "text/html; charset=utf-8", RawFrom: site.EncodingBrotli,
		Variants: map[string]site.Variant{site.EncodingBrotli: {Hash: blobs.Sum(br), Size: int64(len(br))}}}
	for coding, level := range map[string]int{site.EncodingZstd: 3, site.EncodingGzip: 6} {
		b, err := d.Derive(coding, level, raw)
		if err != nil {
			t.Fatal(err)
		}
		f.Variants[coding] = site.Variant{Hash: blobs.Sum(b), Size: int64(len(b)), Level: level}
	}
	obj, err := site.EncodeBlob(br)
	if err != nil {
		t.Fatal(err)
	}
	return f, blobs.Sum(br), obj
}

// TestDerivedBlobs publishes files that travel as their brotli variants alone: the follower
// makes their raw content and their zstd and gzip variants, switches, and leaves out (without
// holding the switch) a variant whose bytes come out other than the manifest says, as another
// encoder version would make them. When the deploy is collected, what was derived for it goes.
func TestDerivedBlobs(t *testing.T) {
	master, f, switches := network(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	index, indexBr, indexObj := derivedFile(t, "<p>derived on every node</p>\n")
	about, aboutBr, aboutObj := derivedFile(t, "<p>about this site</p>\n")
	mismatched := about.Variants[site.EncodingGzip]
	mismatched.Hash = blobs.Sum([]byte("another encoder's bytes"))
	about.Variants[site.EncodingGzip] = mismatched
	m := &site.Manifest{Version: site.ManifestVersion, Created: time.Now().UTC().Truncate(time.Second),
		Files: map[string]site.File{"/index.html": index, "/about.html": about}}
	id, err := m.ID()
	if err != nil {
		t.Fatal(err)
	}
	// The brotli blob first and the manifest after, as publishing writes them: the follower
	// derives when the manifest arrives.
	if err := master.Put(ctx, site.BlobKey(indexBr), indexObj); err != nil {
		t.Fatal(err)
	}
	publishPointer(t, ctx, master, m, id)
	wait.For(t, 10*time.Second, func() error {
		if s := f.Status(); s.Target != id || s.MissingBlobs != 4 { // about's br, and what comes of it
			return fmt.Errorf("status %+v, want 4 blobs missing", s)
		}
		return nil
	})
	// The second brotli blob after the manifest: the follower derives when it arrives.
	if err := master.Put(ctx, site.BlobKey(aboutBr), aboutObj); err != nil {
		t.Fatal(err)
	}
	wait.For(t, 10*time.Second, func() error {
		if got := switches(); len(got) != 1 || got[0] != id {
			return fmt.Errorf("switches %v, status %+v", got, f.Status())
		}
		return nil
	})
	store := f.cfg.Blobs
	for _, file := range []site.File{index, about} {
		raw, err := store.ReadAll(file.Hash)
		if err != nil || blobs.Sum(raw) != file.Hash {
			t.Fatalf("raw content not derived: %v", err)
		}
	}
	for name, v := range map[string]site.Variant{"index zstd": index.Variants[site.EncodingZstd], "index gzip": index.Variants[site.EncodingGzip], "about zstd": about.Variants[site.EncodingZstd]} {
		if !store.Has(v.Hash) {
			t.Errorf("%s variant not derived", name)
		}
	}
	if store.Has(mismatched.Hash) {
		t.Error("a variant that does not hash as the manifest says was stored")
	}

	// A new deploy; the first is collected, and what was derived for it goes with it.
	replaceDeploy(t, ctx, master, f)
	if err := master.Delete(ctx, site.DeployKey(id)); err != nil {
		t.Fatal(err)
	}
	for _, h := range []blobs.Hash{indexBr, aboutBr} {
		if err := master.Delete(ctx, site.BlobKey(h)); err != nil {
			t.Fatal(err)
		}
	}
	wait.For(t, 10*time.Second, func() error {
		for _, h := range m.Blobs() {
			if store.Has(h) {
				return fmt.Errorf("blob %s of the collected deploy still stored", h.Short())
			}
		}
		return nil
	})
}
