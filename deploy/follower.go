// Package deploy keeps a node's blob store holding the current deploy of every site of the network
// and switches a site to a new deploy only once every blob of it is on disk, so visitors of an edge
// never see a mix of two deploys or a file that is not there yet.
//
// A deploy lives in the dt table under three kinds of keys (see package site): blob objects with
// the file data, a manifest per deploy, and the current pointer of each site that publishing and
// rollback write (site/current for the site "default", site/<name>/current for the others). The
// sites themselves are the records under sites/<name>, which name their hosts. Blobs and manifests
// are content-addressed and shared by every site. The Follower reads the table's events, decodes
// and verifies each blob into the blob store (raw bytes, ready to serve), keeps one state per site,
// and reports each site's active deploy, and the sites and their hosts, through callbacks.
package deploy

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/dt-cdn/dt/blobs"
	"github.com/dt-cdn/dt/dt"
	"github.com/dt-cdn/dt/site"
)

// Active is the deploy a node serves for a site.
type Active struct {
	Site     string // the site's name: site.DefaultSite for the one of site/current
	ID       site.DeployID
	Manifest *site.Manifest
	Since    time.Time // when this node switched to it
}

// Status says how far a node is from serving a site's current deploy.
type Status struct {
	Active       site.DeployID `json:"active"`         // zero before the first switch
	Target       site.DeployID `json:"target"`         // the site's current deploy, as last seen
	Synced       bool          `json:"synced"`         // Active is Target
	MissingBlobs int           `json:"missing_blobs"`  // blobs of Target not on disk yet
	Manifests    int           `json:"manifests_kept"` // deploys whose manifest this node holds
	// Sites, when set, is the state of every site of the table, sorted by name (Follower.Sites);
	// Status and StatusOf leave it empty.
	Sites []SiteStatus `json:"sites,omitempty"`
}

// Config configures a Follower.
type Config struct {
	// Blobs is where file data goes. Required.
	Blobs *blobs.Store
	// OnSwitch is called (from the goroutine calling Handle, with no lock held) each time the
	// active deploy of a site changes, after every blob of it is on disk. Optional.
	OnSwitch func(Active)
	// OnSites is called (from the goroutine calling Handle, with no lock held) each time the
	// network's sites or their hosts change, with the new host table. A site not in the table is
	// no longer served: the follower forgets its active deploy, and its blobs go as their
	// objects do. Optional.
	OnSites func(*site.Hosts)
	// Held reports whether the table holds an object under key now. The follower asks it when
	// a site's record or current pointer leaves: dt reports a replaced object (dt site set, a
	// publish) as a removal and then an addition, and a key the table still holds was
	// replaced, so its site stays served, with its deploy, until the addition brings the new
	// record or pointer. Nil: every removal of a record takes its site away, and a replaced
	// record makes the site leave and come back, its visitors answered 421 and then 503 until
	// its deploy is built again; removals of current pointers are ignored (every publish
	// replaces one), so a site keeps its last current deploy as its target.
	Held func(key string) bool
	// MaxBlobSize bounds one decoded blob. Zero: 64 MiB (site's chunking keeps file blobs at 4 MiB;
	// precompressed variants of large files can be bigger).
	MaxBlobSize int64
	// Logger receives the follower's logs. Nil discards them.
	Logger *slog.Logger
	// Now is the clock. Nil: time.Now.
	Now func() time.Time
}

// Follower follows the current deploy of every site. Feed it every event of the node with
// Handle. It is safe for concurrent use, though events must be handled in the order the node
// delivers them.
type Follower struct {
	cfg Config
	log *slog.Logger

	mu        sync.Mutex
	manifests map[site.DeployID]*site.Manifest // guarded by mu
	// sites holds each site's state, by name, for every site with a current pointer or a
	// record; records the sites' records, and hasDefault whether site/current exists (the
	// default site then exists without a record). Guarded by mu.
	sites      map[string]*siteState
	records    map[string]site.Record
	hasDefault bool
	// gone are the manifests that left the table while a site served them: kept while it does,
	// and dropped, with the blobs only they name, when the site leaves the table (sitesChanged).
	// Guarded by mu.
	gone map[site.DeployID]bool
	// orphans are blobs whose objects left the table while a kept manifest still named them;
	// they go when the last such manifest goes. (Records from one peer may be applied in a
	// different order than they were written, so a blob's removal can come before its
	// manifest's.) Guarded by mu.
	orphans map[blobs.Hash]bool
	// refs are manifests stored as chunk references (site.ManifestRef), by deploy, kept as long as
	// their deploys: pending ones are assembled once every chunk is on disk. Guarded by mu.
	refs map[site.DeployID]*site.ManifestRef
	// refLevel is the level of a nested ref being resolved (absent: the top, in refs), and
	// refInner the chunks of the inner levels expanded so far, kept like the top's. Guarded by mu.
	refLevel map[site.DeployID]*site.ManifestRef
	refInner map[site.DeployID][]blobs.Hash
	// refMissing are the chunks of each unassembled ref not yet on disk (see siteState's
	// targetMissing). Guarded by mu.
	refMissing map[site.DeployID]map[blobs.Hash]bool
	// needed is every blob a kept manifest, ref or an active deploy names, built on demand
	// and dropped (nil) whenever one of those changes. Guarded by mu.
	needed map[blobs.Hash]bool
	// derive makes the blobs a node derives (site.File.RawFrom, site.Variant.Level); underivable
	// are derived variants whose bytes came out other than the manifest says (another encoder
	// version): this node does without them. Guarded by mu.
	derive      site.Deriver
	underivable map[blobs.Hash]bool
}

// New returns a follower.
func New(cfg Config) (*Follower, error) {
	if cfg.Blobs == nil {
		return nil, errors.New("deploy: Config.Blobs is required")
	}
	if cfg.MaxBlobSize == 0 {
		cfg.MaxBlobSize = 64 << 20
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Follower{cfg: cfg, log: cfg.Logger, manifests: map[site.DeployID]*site.Manifest{}, orphans: map[blobs.Hash]bool{}, refs: map[site.DeployID]*site.ManifestRef{},
		refMissing: map[site.DeployID]map[blobs.Hash]bool{}, refLevel: map[site.DeployID]*site.ManifestRef{},
		refInner: map[site.DeployID][]blobs.Hash{}, underivable: map[blobs.Hash]bool{},
		sites: map[string]*siteState{}, records: map[string]site.Record{}, gone: map[site.DeployID]bool{}}, nil
}

// Handle applies one event of the node. It returns an error for objects that do not decode
// (a master wrote something invalid); the follower stays as it was for that object.
func (f *Follower) Handle(ev dt.Event) error {
	switch ev.Type {
	case dt.EventObjectAdded:
		return f.added(ev.Key, ev.Object)
	case dt.EventObjectRemoved:
		f.removed(ev.Key)
	}
	return nil
}

// added applies an object written to the table: a blob, a deploy's manifest, a site's current
// pointer or a site's record. Other keys are not the follower's.
func (f *Follower) added(key string, body []byte) error {
	if h, ok := site.ParseBlobKey(key); ok {
		return f.blobAdded(h, body)
	}
	if id, ok := site.ParseDeployKey(key); ok {
		return f.deployAdded(id, body)
	}
	if name, ok := site.ParseCurrentKey(key); ok {
		c, err := site.ParseCurrent(body)
		if err != nil {
			return fmt.Errorf("deploy: current pointer of site %s: %w", name, err)
		}
		f.mu.Lock()
		f.stateLocked(name).target = c.Deploy
		// Only the default site's pointer makes the default site exist without a record; a
		// named site's pointer must not, or the next host table would hand every host no site
		// claims to a default site that serves nothing (503 rather than 421).
		changed := false
		if name == site.DefaultSite {
			changed, f.hasDefault = !f.hasDefault, true
		}
		f.mu.Unlock()
		f.sitesChanged(changed)
		return nil
	}
	if name, ok := site.ParseRecordKey(key); ok {
		r, err := site.ParseRecordAt(key, body)
		if err != nil {
			return fmt.Errorf("deploy: record of site %s: %w", name, err)
		}
		f.mu.Lock()
		f.records[name] = r
		f.stateLocked(name)
		f.mu.Unlock()
		f.sitesChanged(true)
	}
	return nil
}

// blobAdded stores a blob's content when the node lacks it, and evaluates the target again when
// something waited for the blob.
func (f *Follower) blobAdded(h blobs.Hash, body []byte) error {
	f.mu.Lock()
	delete(f.orphans, h)
	f.mu.Unlock()
	if have, err := f.storeBlob(h, body); err != nil || !have {
		return err
	}
	f.mu.Lock()
	waited := f.arrivedLocked(h)
	f.mu.Unlock()
	if waited {
		f.evaluate()
	}
	return nil
}

// storeBlob puts a blob object's content on disk, after checking that it is the blob its key
// names, unless the disk already holds it. It reports whether the disk holds the blob: not when
// the record came without its body (a node that keeps records without bodies).
func (f *Follower) storeBlob(h blobs.Hash, body []byte) (bool, error) {
	if f.cfg.Blobs.Has(h) {
		return true, nil
	}
	if body == nil {
		return false, nil
	}
	got, raw, err := site.DecodeBlob(body, f.cfg.MaxBlobSize)
	if err != nil {
		return false, fmt.Errorf("deploy: blob %s: %w", h.Short(), err)
	}
	if got != h {
		return false, fmt.Errorf("deploy: blob object under %s holds %s", h.Short(), got.Short())
	}
	if err := f.cfg.Blobs.PutBytes(h, raw); err != nil {
		return false, fmt.Errorf("deploy: store blob %s: %w", h.Short(), err)
	}
	return true, nil
}

// arrivedLocked takes the blob h, now on disk, off the sets of blobs awaited: each site's
// target's, with what this node derives from h for the target's files, and the chunks of every
// unassembled ref. It reports whether any set held it.
func (f *Follower) arrivedLocked(h blobs.Hash) bool {
	waited := false
	for _, st := range f.sites {
		waited = st.targetMissing[h] || waited
		delete(st.targetMissing, h)
		if len(st.targetMissing) > 0 {
			if m := f.manifests[st.targetMissingFor]; m != nil {
				for _, made := range f.deriveFromLocked(st, m, h) {
					waited = waited || st.targetMissing[made]
					delete(st.targetMissing, made)
				}
			}
		}
	}
	for _, set := range f.refMissing {
		if set[h] {
			delete(set, h)
			waited = true
		}
	}
	return waited
}

// deriveFromLocked derives what the files of m (the target's manifest of st) make from the
// brotli blob h, for the files whose raw content comes from it (site.File.RawFrom), and returns
// the blobs made. It indexes m's files by their brotli blob once per target (sources).
func (f *Follower) deriveFromLocked(st *siteState, m *site.Manifest, h blobs.Hash) []blobs.Hash {
	if st.sourcesFor != st.targetMissingFor {
		st.sources, st.sourcesFor = map[blobs.Hash][]string{}, st.targetMissingFor
		for path, file := range m.Files {
			if file.RawFrom != "" {
				src := file.Variants[file.RawFrom].Hash
				st.sources[src] = append(st.sources[src], path)
			}
		}
	}
	paths := st.sources[h]
	if len(paths) == 0 {
		return nil
	}
	return f.deriveLocked(m, paths)
}

// deployAdded keeps a deploy's manifest, whole or as chunk references (assembled once every
// chunk is on disk), after checking that a whole one hashes to its deploy id.
func (f *Follower) deployAdded(id site.DeployID, body []byte) error {
	m, ref, err := site.ParseDeployObject(body)
	if err != nil {
		return fmt.Errorf("deploy: manifest %s: %w", id.Short(), err)
	}
	if ref != nil {
		f.mu.Lock()
		delete(f.gone, id)
		f.refs[id] = ref
		f.needed = nil
		f.mu.Unlock()
		f.evaluate() // assembles it when its chunks are here
		return nil
	}
	if got, err := m.ID(); err != nil || got != id {
		return fmt.Errorf("deploy: manifest under %s hashes to %s", id.Short(), got.Short())
	}
	f.mu.Lock()
	delete(f.gone, id)
	f.manifests[id] = m
	f.needed = nil
	f.mu.Unlock()
	f.evaluate()
	return nil
}

func (f *Follower) removed(key string) {
	if name, ok := site.ParseCurrentKey(key); ok {
		f.currentRemoved(name, key)
		return
	}
	if name, ok := site.ParseRecordKey(key); ok {
		if f.cfg.Held != nil && f.cfg.Held(key) {
			return // replaced: the addition of the new record follows
		}
		f.mu.Lock()
		_, had := f.records[name]
		delete(f.records, name)
		f.mu.Unlock()
		if had {
			f.sitesChanged(true)
		}
		return
	}
	if id, ok := site.ParseDeployKey(key); ok {
		f.mu.Lock()
		// What this node derived for the deploy has no blob object whose removal would free
		// it: it goes with the manifest, unless another kept deploy names it.
		derived := derivedOf(f.manifests[id])
		if !f.activeLocked(id) {
			delete(f.manifests, id)
		} else {
			f.gone[id] = true
		}
		delete(f.refs, id)
		delete(f.refMissing, id)
		delete(f.refLevel, id)
		delete(f.refInner, id)
		f.needed = nil
		var free []blobs.Hash
		for h := range f.orphans {
			if !f.neededLocked(h) {
				free = append(free, h)
				delete(f.orphans, h)
			}
		}
		for _, h := range derived {
			if !f.neededLocked(h) {
				free = append(free, h)
				delete(f.underivable, h)
			}
		}
		f.mu.Unlock()
		f.deleteBlobs(free)
		return
	}
	if h, ok := site.ParseBlobKey(key); ok {
		f.mu.Lock()
		needed := f.neededLocked(h)
		if needed {
			f.orphans[h] = true
		}
		f.mu.Unlock()
		if !needed {
			f.deleteBlobs([]blobs.Hash{h})
		}
	}
}

// derivedOf returns the blobs this node derives for m's files (nil m: none).
func derivedOf(m *site.Manifest) []blobs.Hash {
	if m == nil {
		return nil
	}
	var derived []blobs.Hash
	for _, file := range m.Files {
		if file.RawFrom != "" && len(file.Chunks) == 0 {
			derived = append(derived, file.Hash)
		}
		for _, v := range file.Variants {
			if v.Level != 0 {
				derived = append(derived, v.Hash)
			}
		}
	}
	return derived
}

func (f *Follower) deleteBlobs(hs []blobs.Hash) {
	for _, h := range hs {
		if err := f.cfg.Blobs.Delete(h); err != nil {
			f.log.Warn("Delete blob", slog.Any("blob", h), slog.Any("err", err))
		}
	}
}

// activeLocked reports whether id is the active deploy of a site.
func (f *Follower) activeLocked(id site.DeployID) bool {
	for _, st := range f.sites {
		if st.active != nil && st.active.ID == id {
			return true
		}
	}
	return false
}

// neededLocked reports whether a kept manifest (or an active one) names h: a blob the publisher
// collected may still serve the active deploy until the switch. A publisher collecting a deploy
// removes its manifest before its blobs, so that the blobs can go here as their objects do.
func (f *Follower) neededLocked(h blobs.Hash) bool {
	if f.needed == nil {
		f.needed = map[blobs.Hash]bool{}
		add := func(m *site.Manifest) {
			for _, b := range m.Blobs() {
				f.needed[b] = true
			}
		}
		for _, st := range f.sites {
			if st.active != nil {
				add(st.active.Manifest)
			}
		}
		for _, ref := range f.refs {
			for _, c := range ref.Chunks {
				f.needed[c.Hash] = true
			}
		}
		for _, hs := range f.refInner {
			for _, h := range hs {
				f.needed[h] = true
			}
		}
		for _, m := range f.manifests {
			add(m)
		}
	}
	return f.needed[h]
}

// evaluateLocked switches the site st to its target once the target's manifest and every blob
// are here, and returns the new active deploy when it switched.
func (f *Follower) evaluateLocked(st *siteState) *Active {
	if st.targetMissingFor != st.target {
		st.targetMissing, st.targetMissingFor, st.targetNew = nil, site.DeployID{}, nil
	}
	if st.target.IsZero() || (st.active != nil && st.active.ID == st.target) {
		st.missing = 0
		return nil
	}
	m := f.manifests[st.target]
	if m == nil {
		st.missing = -1 // the manifest itself has not arrived
		return nil
	}
	if st.targetMissingFor != st.target {
		news, newFiles := newSinceActive(st.active, m)
		// Sources already on disk (a rollback, or the manifest last).
		if len(newFiles) > 0 {
			f.deriveLocked(m, newFiles)
		}
		st.targetMissing, st.targetMissingFor, st.targetNew = f.missingLocked(news), st.target, news
	}
	if st.missing = len(st.targetMissing); st.missing > 0 {
		return nil
	}
	// Every blob arrived: look once more at the disk, in case one went meanwhile (deleted by
	// hand, say), before visitors are sent to it.
	if again := f.missingLocked(st.targetNew); len(again) > 0 {
		st.targetMissing, st.missing = again, len(again)
		return nil
	}
	st.targetMissing, st.targetMissingFor, st.targetNew = nil, site.DeployID{}, nil
	a := Active{Site: st.name, ID: st.target, Manifest: m, Since: f.cfg.Now()}
	st.active = &a
	f.needed = nil
	f.log.Info("Deploy active", slog.String("site", st.name), slog.Any("deploy", a.ID), slog.Int("files", len(m.Files)))
	return &a
}

// newSinceActive returns the blobs of m that the active deploy does not name, and the paths of
// m's files whose content is not the same file in the active deploy. The active deploy's blobs
// are on disk (they were when it became active, and nothing collects what it needs), so only
// the others need a look at the disk: a deploy that changes a few files of a large site costs a
// few looks, not one per blob. With no active deploy, every blob and file.
func newSinceActive(active *Active, m *site.Manifest) (news []blobs.Hash, paths []string) {
	if active == nil {
		return m.Blobs(), slices.Collect(maps.Keys(m.Files))
	}
	have := map[blobs.Hash]bool{}
	for _, h := range active.Manifest.Blobs() {
		have[h] = true
	}
	for _, h := range m.Blobs() {
		if !have[h] {
			news = append(news, h)
		}
	}
	for path, file := range m.Files {
		if old, ok := active.Manifest.Files[path]; !ok || old.Hash != file.Hash || old.RawFrom != file.RawFrom || !maps.Equal(old.Variants, file.Variants) {
			paths = append(paths, path)
		}
	}
	return news, paths
}

// missingLocked returns the blobs of hs that are not on disk.
func (f *Follower) missingLocked(hs []blobs.Hash) map[blobs.Hash]bool {
	missing := map[blobs.Hash]bool{}
	for _, h := range hs {
		if !f.underivable[h] && !f.cfg.Blobs.Has(h) {
			missing[h] = true
		}
	}
	return missing
}

// deriveLocked makes what this node derives for the given files of m (every file when paths is
// nil) whose brotli variant is on disk: the raw content (RawFrom), checked against the file's
// hash, and the derived variants, kept only when they hash as m says. It returns the blobs it
// stored, and the variants it found it cannot make. A brotli variant that does not decompress
// to its file is logged and left: the deploy waits, as for a missing blob.
func (f *Follower) deriveLocked(m *site.Manifest, paths []string) []blobs.Hash {
	if paths == nil {
		paths = slices.Collect(maps.Keys(m.Files))
	}
	var made []blobs.Hash
	for _, path := range paths {
		file := m.Files[path]
		if file.RawFrom == "" {
			continue
		}
		src := file.Variants[file.RawFrom].Hash
		var todo []string // derived codings not on disk
		for coding, v := range file.Variants {
			if v.Level != 0 && !f.underivable[v.Hash] && !f.cfg.Blobs.Has(v.Hash) {
				todo = append(todo, coding)
			}
		}
		needRaw := !f.cfg.Blobs.Has(file.Hash)
		if !needRaw && len(todo) == 0 {
			continue
		}
		var raw []byte
		if br, err := f.cfg.Blobs.ReadAll(src); err != nil {
			continue // not here yet
		} else if raw, err = site.RawFromBrotli(br, file.Size, file.Hash); err != nil {
			f.log.Warn("Raw content not derived", slog.String("path", path), slog.Any("err", err))
			continue
		}
		if needRaw {
			if err := f.cfg.Blobs.PutBytes(file.Hash, raw); err != nil {
				f.log.Warn("Derived blob not stored", slog.String("path", path), slog.Any("err", err))
				continue
			}
			made = append(made, file.Hash)
		}
		for _, coding := range todo {
			v := file.Variants[coding]
			b, err := f.derive.Derive(coding, v.Level, raw)
			if err == nil && blobs.Sum(b) != v.Hash {
				err = fmt.Errorf("made %d bytes hashing to %s, the manifest says %d bytes, %s", len(b), blobs.Sum(b).Short(), v.Size, v.Hash.Short())
			}
			if err != nil {
				// Another encoder version: visitors get the other codings of this file.
				f.log.Warn("Variant not derived; this node serves without it", slog.String("path", path), slog.String("coding", coding), slog.Any("err", err))
				f.underivable[v.Hash] = true
				made = append(made, v.Hash)
				continue
			}
			if err := f.cfg.Blobs.PutBytes(v.Hash, b); err != nil {
				f.log.Warn("Derived blob not stored", slog.String("path", path), slog.Any("err", err))
				continue
			}
			made = append(made, v.Hash)
		}
	}
	return made
}

// evaluate assembles manifests whose chunks are all here, re-checks the target of every site in
// the table and reports the switches, outside the lock, in the order of the sites' names.
func (f *Follower) evaluate() {
	f.mu.Lock()
	for id := range f.refs {
		if _, done := f.manifests[id]; !done {
			f.resolveRefLocked(id)
		}
	}
	var switched []Active
	for _, name := range slices.Sorted(maps.Keys(f.sites)) {
		if !f.presentLocked(name) {
			continue
		}
		if a := f.evaluateLocked(f.sites[name]); a != nil {
			switched = append(switched, *a)
		}
	}
	f.mu.Unlock()
	if f.cfg.OnSwitch != nil {
		for _, a := range switched {
			f.cfg.OnSwitch(a)
		}
	}
}

// resolveRefLocked takes a deploy stored as a ref as far as the blobs on disk allow: through
// each level of a nested ref whose chunks are all here, to the assembled manifest.
func (f *Follower) resolveRefLocked(id site.DeployID) {
	for {
		ref := f.refLevel[id]
		if ref == nil {
			ref = f.refs[id]
		}
		set, ok := f.refMissing[id]
		if !ok {
			set = f.missingLocked(ref.Hashes())
			f.refMissing[id] = set
		}
		if len(set) > 0 {
			return
		}
		delete(f.refMissing, id)
		if ref.Depth > 0 {
			inner, err := ref.Expand(f.cfg.Blobs.ReadAll)
			if err != nil {
				f.log.Warn("Manifest reference does not expand", slog.Any("deploy", id), slog.Any("err", err))
				return
			}
			f.refLevel[id] = inner
			f.refInner[id] = append(f.refInner[id], inner.Hashes()...)
			f.needed = nil
			continue
		}
		m, _, err := site.AssembleManifest(ref, id, f.cfg.Blobs.ReadAll)
		if err != nil {
			f.log.Warn("Manifest does not assemble", slog.Any("deploy", id), slog.Any("err", err))
			return
		}
		f.manifests[id] = m
		f.needed = nil
		return
	}
}

// Active returns the active deploy of the default site (site/current), if any.
func (f *Follower) Active() (Active, bool) { return f.ActiveOf(site.DefaultSite) }
