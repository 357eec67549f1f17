package deploy

import (
	"log/slog"
	"maps"
	"slices"

	"github.com/dt-cdn/dt/blobs"
	"github.com/dt-cdn/dt/site"
)

// siteState is what the follower knows of one site. Its fields are guarded by Follower.mu.
type siteState struct {
	name    string
	target  site.DeployID // the site's current deploy, as last seen
	active  *Active
	missing int // blobs of target still missing; -1 while its manifest has not arrived
	// Blobs of the target not yet on disk (targetMissing, filled for the deploy
	// targetMissingFor). The set is filled once, with a look at the disk per blob, and shrinks
	// as blobs arrive, so following a deploy of N blobs costs O(N) looks, not one per blob per
	// arrival.
	targetMissing    map[blobs.Hash]bool
	targetMissingFor site.DeployID
	targetNew        []blobs.Hash // the target's blobs the active deploy does not name
	// sources maps each brotli blob of the target's files under RawFrom to those files' paths,
	// built once per target (sourcesFor), so each arriving blob finds its files at once.
	sources    map[blobs.Hash][]string
	sourcesFor site.DeployID
}

// stateLocked returns the state of the named site, made on first use.
func (f *Follower) stateLocked(name string) *siteState {
	st := f.sites[name]
	if st == nil {
		st = &siteState{name: name}
		f.sites[name] = st
	}
	return st
}

// presentLocked reports whether the named site is in the table: it has a record, or it is the
// default site and site/current exists.
func (f *Follower) presentLocked(name string) bool {
	_, ok := f.records[name]
	return ok || name == site.DefaultSite && f.hasDefault
}

// hostsLocked builds the host table of the sites in the table.
func (f *Follower) hostsLocked() *site.Hosts {
	_, explicit := f.records[site.DefaultSite]
	return site.NewHosts(slices.Collect(maps.Values(f.records)), f.hasDefault && !explicit)
}

// sitesChanged forgets the active deploys of sites that left the table, evaluates every site,
// and reports the host table when the sites changed.
func (f *Follower) sitesChanged(changed bool) {
	var hosts *site.Hosts
	var free []blobs.Hash
	if changed {
		f.mu.Lock()
		left := false
		for _, st := range f.sites {
			if !f.presentLocked(st.name) && st.active != nil {
				f.log.Info("Site no longer served", slog.String("site", st.name))
				st.active, st.missing = nil, 0
				st.targetMissing, st.targetMissingFor, st.targetNew = nil, site.DeployID{}, nil
				f.needed, left = nil, true
			}
		}
		if left {
			free = f.dropGoneLocked()
		}
		hosts = f.hostsLocked()
		f.mu.Unlock()
	}
	f.deleteBlobs(free)
	if hosts != nil && f.cfg.OnSites != nil {
		f.cfg.OnSites(hosts)
	}
	f.evaluate()
}

// dropGoneLocked drops the manifests that left the table while a site served them and that no
// site serves now, and returns the blobs to delete: the orphans (whose objects left the table
// too) that no kept manifest names any more. (The table may apply a site's removal after its
// deploy's and blobs', so these waited for the site to go.)
func (f *Follower) dropGoneLocked() []blobs.Hash {
	var derived []blobs.Hash
	for id := range f.gone {
		if !f.activeLocked(id) {
			derived = append(derived, derivedOf(f.manifests[id])...)
			delete(f.manifests, id)
			delete(f.gone, id)
			f.needed = nil
		}
	}
	var free []blobs.Hash
	for h := range f.orphans {
		if !f.neededLocked(h) {
			free = append(free, h)
			delete(f.orphans, h)
		}
	}
	for _, h := range derived {
		if !f.neededLocked(h) && !slices.Contains(free, h) {
			free = append(free, h)
			delete(f.underivable, h)
		}
	}
	return free
}

// currentRemoved applies the removal of the current pointer of the site name (under key), unless
// the table still holds one (Held: a publish replaced it). The site then has no current deploy:
// its target is cleared, so its status and heartbeats report none, as the table does for every
// observer (heartbeat.CurrentsDigest leaves the site out). A site with a record keeps serving its
// active deploy until its record leaves too; the default site without a record exists only by
// its pointer, so it leaves with it, and hosts no site claims are misdirected (421) rather than
// sent to a site with nothing to serve.
func (f *Follower) currentRemoved(name, key string) {
	if f.cfg.Held == nil || f.cfg.Held(key) {
		return
	}
	f.mu.Lock()
	if st := f.sites[name]; st != nil {
		st.target, st.missing = site.DeployID{}, 0
		st.targetMissing, st.targetMissingFor, st.targetNew = nil, site.DeployID{}, nil
	}
	changed := name == site.DefaultSite && f.hasDefault
	if changed {
		f.hasDefault = false
	}
	f.mu.Unlock()
	f.sitesChanged(changed)
}

// ActiveOf returns the active deploy of the named site, if any.
func (f *Follower) ActiveOf(name string) (Active, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if st := f.sites[name]; st != nil && st.active != nil {
		return *st.active, true
	}
	return Active{}, false
}

// Status reports the follower's state for the default site (site/current).
func (f *Follower) Status() Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.statusLocked(f.sites[site.DefaultSite])
}

// StatusOf reports the follower's state for the named site (zero for a site it does not know).
func (f *Follower) StatusOf(name string) Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.statusLocked(f.sites[name])
}

// SiteStatus is the state of one site of the table.
type SiteStatus struct {
	Site string `json:"site"`
	Status
}

// Sites reports the state of every site in the table, sorted by name.
func (f *Follower) Sites() []SiteStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []SiteStatus
	for _, name := range slices.Sorted(maps.Keys(f.sites)) {
		if f.presentLocked(name) {
			out = append(out, SiteStatus{Site: name, Status: f.statusLocked(f.sites[name])})
		}
	}
	return out
}

// Hosts returns the host table of the sites in the table.
func (f *Follower) Hosts() *site.Hosts {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.hostsLocked()
}

func (f *Follower) statusLocked(st *siteState) Status {
	s := Status{Manifests: len(f.manifests)}
	if st == nil {
		return s
	}
	s.Target, s.MissingBlobs = st.target, max(st.missing, 0)
	if st.active != nil {
		s.Active = st.active.ID
	}
	s.Synced = !s.Target.IsZero() && s.Active == s.Target
	return s
}
