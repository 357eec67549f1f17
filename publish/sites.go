package publish

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/dt-cdn/dt/dt"
	"github.com/dt-cdn/dt/heartbeat"
	"github.com/dt-cdn/dt/site"
)

// SiteInfo describes one site of the network, as Sites lists it.
type SiteInfo struct {
	Name  string   `json:"name"`
	Hosts []string `json:"hosts"`
	// Implicit is set for the site site.DefaultSite when it has no record: it then serves every
	// host no other site claims, and Hosts is empty.
	Implicit bool `json:"implicit"`
	// Current is the site's current deploy; zero (and left out of the JSON) for none yet.
	Current *site.DeployID `json:"current,omitempty"`
	// LiveOn names the live edges serving Current, sorted: each edge's name, or its URL when it
	// has none. Empty when no edge does or the site has no current deploy.
	LiveOn []string `json:"live_on"`
	// Settings are the site's serving settings, as its record holds them; empty for none.
	Settings site.Settings `json:"settings"`
	// Lagging counts the live edges that do not serve Current yet, among those that report
	// the site (every edge for site.DefaultSite; for another site, edges of a release before
	// sites serve none and are not counted).
	Lagging int `json:"edges_lagging"`
}

// Sites lists the network's sites, sorted by name: every record, and the implicit default site
// when it exists (site.ImplicitDefault), each with the edges serving its current deploy after
// one and a half heartbeat intervals of listening (liveRule, as a publish waits for them). It
// needs no master key.
func Sites(ctx context.Context, opts NetworkOptions) ([]SiteInfo, error) {
	opts = opts.withDefaults()
	s, err := openSession(ctx, opts, true)
	if err != nil {
		return nil, err
	}
	defer s.close()
	records, implicit, err := s.sites(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]SiteInfo, 0, len(records)+1)
	if implicit {
		out = append(out, SiteInfo{Name: site.DefaultSite, Hosts: []string{}, Implicit: true})
	}
	for _, r := range records {
		info := SiteInfo{Name: r.Name, Hosts: r.Hosts}
		if r.Settings != nil {
			info.Settings = *r.Settings
		}
		out = append(out, info)
	}
	slices.SortFunc(out, func(a, b SiteInfo) int { return cmp.Compare(a.Name, b.Name) })
	currents := map[string]string{}
	for i := range out {
		out[i].LiveOn = []string{}
		if id, ok, err := s.pointer(ctx, out[i].Name); err != nil {
			return nil, err
		} else if ok {
			out[i].Current = &id
			currents[out[i].Name] = id.String()
		}
	}
	s.listen(ctx, opts.HeartbeatInterval*3/2)
	edges := s.tracker.Edges()
	for i := range out {
		if out[i].Current != nil {
			rule := newLiveRule(out[i].Name, currents)
			results, _ := rule.results(edges, *out[i].Current)
			out[i].LiveOn, out[i].Lagging = liveWhere(results)
		}
	}
	return out, nil
}

// liveWhere returns the names of the edges in results that serve the deploy, sorted, and how
// many do not.
func liveWhere(results []EdgeResult) ([]string, int) {
	names, lagging := []string{}, 0
	for _, e := range results {
		switch {
		case !e.Live:
			lagging++
		case e.Name != "":
			names = append(names, e.Name)
		default:
			names = append(names, e.URL)
		}
	}
	slices.Sort(names)
	return names, lagging
}

// AddSite writes the record of a new site named name claiming hosts. It refuses a name that
// exists already (ErrSiteExists; the implicit default site exists) and a host another site
// claims (ErrHostTaken, naming each host and its site), and waits until a peer holds the record.
// Hosts are normalised (site.NormalizeHost) and must then pass site.CheckHost.
func AddSite(ctx context.Context, name string, hosts []string, opts NetworkOptions) (site.Record, error) {
	return AddSiteSpec(ctx, name, SiteSpec{Hosts: hosts}, opts)
}

// SetSite replaces the hosts of the site name, like AddSite but for a site that exists
// (ErrNoSite otherwise), keeping its settings. Setting the implicit default site writes its
// first record: from then on it serves only the hosts it lists.
func SetSite(ctx context.Context, name string, hosts []string, opts NetworkOptions) (site.Record, error) {
	return UpdateSite(ctx, name, SiteSpec{Hosts: hosts, SetHosts: true}, opts)
}

// SiteSpec is what AddSiteSpec writes of a new site and UpdateSite changes of one that exists.
type SiteSpec struct {
	// Hosts are the hosts the site claims, as a user types them (see AddSite).
	Hosts []string
	// SetHosts makes UpdateSite replace the site's hosts with Hosts; without it the site keeps
	// its hosts. AddSiteSpec always takes Hosts.
	SetHosts bool
	// Settings are the serving settings to set; each one left unset keeps the site's own
	// (site.Settings.Merge).
	Settings site.Settings
	// Force writes a record with settings even while live edges of an earlier release are
	// heard: those edges refuse it, so they never serve a new site, keep what they last read of
	// one that exists, and drop it when they restart, until they are upgraded.
	Force bool
}

// AddSiteSpec is AddSite with settings. A record with settings is written only when no live
// edge of an earlier release is heard over one and a half heartbeat intervals (ErrOldEdges,
// naming them), unless spec.Force.
func AddSiteSpec(ctx context.Context, name string, spec SiteSpec, opts NetworkOptions) (site.Record, error) {
	return putSite(ctx, name, spec, opts, false)
}

// UpdateSite changes the site name as spec says (ErrNoSite for a site that does not exist),
// with AddSiteSpec's check of the edges when the record it writes has settings. The implicit
// default site claims every unclaimed host only while it has no record, so it takes settings
// only with hosts of its own (spec.SetHosts).
func UpdateSite(ctx context.Context, name string, spec SiteSpec, opts NetworkOptions) (site.Record, error) {
	return putSite(ctx, name, spec, opts, true)
}

func putSite(ctx context.Context, name string, spec SiteSpec, opts NetworkOptions, replace bool) (site.Record, error) {
	if _, err := newRecord(name, spec.Hosts); err != nil {
		return site.Record{}, err
	}
	opts = opts.withDefaults()
	s, err := openSession(ctx, opts, false)
	if err != nil {
		return site.Record{}, err
	}
	defer s.close()
	records, implicit, err := s.sites(ctx)
	if err != nil {
		return site.Record{}, err
	}
	r, err := siteUpdate(records, implicit, name, spec, replace)
	if err != nil {
		return site.Record{}, err
	}
	if claims := site.Claimed(records, r); len(claims) > 0 {
		taken := make([]string, len(claims))
		for i, c := range claims {
			taken[i] = c.Host + " (site " + c.Site + ")"
		}
		return site.Record{}, fmt.Errorf("%w: %s", ErrHostTaken, strings.Join(taken, ", "))
	}
	body, err := r.Marshal()
	if err != nil {
		return site.Record{}, err
	}
	if r.Settings != nil && !spec.Force {
		if err := s.checkEdgesReadSettings(ctx, opts); err != nil {
			return site.Record{}, fmt.Errorf("site %s: %w", name, err)
		}
	}
	key := site.RecordKey(name)
	if err := s.node.Put(ctx, key, body); err != nil {
		return site.Record{}, fmt.Errorf("publish: write site %s: %w", name, err)
	}
	if err := s.replicated(ctx, key); err != nil {
		return r, fmt.Errorf("publish: site %s written but not confirmed by a peer: %w", name, err)
	}
	return r, nil
}

// siteUpdate returns the record spec makes of the site name among records (implicit: the
// default site exists without one): a new site when !replace, the existing one changed when
// replace.
func siteUpdate(records []site.Record, implicit bool, name string, spec SiteSpec, replace bool) (site.Record, error) {
	i := slices.IndexFunc(records, func(o site.Record) bool { return o.Name == name })
	exists := implicit && name == site.DefaultSite || i >= 0
	switch {
	case exists && !replace:
		return site.Record{}, fmt.Errorf("%w: %s (change its hosts with dt site set)", ErrSiteExists, name)
	case !exists && replace:
		return site.Record{}, fmt.Errorf("%w: %s (add it with dt site add)", ErrNoSite, name)
	case i < 0 && replace && !spec.SetHosts:
		return site.Record{}, fmt.Errorf("%w: site %s serves every host no other site claims until it has a record; give it its hosts (--host) with its first settings", ErrNoSite, name)
	}
	var old site.Record
	if i >= 0 {
		old = records[i]
	}
	hosts := old.Hosts
	if spec.SetHosts || !replace {
		hosts = spec.Hosts
	}
	r, err := newRecord(name, hosts)
	if err != nil {
		return site.Record{}, err
	}
	var settings site.Settings
	if old.Settings != nil {
		settings = *old.Settings
	}
	if settings = settings.Merge(spec.Settings); !settings.IsZero() {
		r.Settings = &settings
	}
	return r, r.Validate()
}

// checkEdgesReadSettings listens to heartbeats for one and a half intervals and returns an
// error wrapping ErrOldEdges naming every live edge that does not report reading site settings
// (heartbeat.Heartbeat.SiteSettings): an edge of an earlier release, which would refuse a
// record with settings (see site.Record).
func (s *session) checkEdgesReadSettings(ctx context.Context, opts NetworkOptions) error {
	s.listen(ctx, opts.HeartbeatInterval*3/2)
	if err := ctx.Err(); err != nil {
		return err
	}
	var old []string
	for _, e := range s.tracker.Edges() {
		if e.State == heartbeat.Alive && !e.Last.SiteSettings {
			old = append(old, cmp.Or(e.Last.Name, e.Last.PublicURL, e.Node))
		}
	}
	if len(old) == 0 {
		return nil
	}
	slices.Sort(old)
	return fmt.Errorf("%w: %s; upgrade them first, or write the settings anyway with --force (those edges then refuse the record until upgraded: a new site is not served there, and an existing one is dropped when they restart)",
		ErrOldEdges, strings.Join(old, ", "))
}

// newRecord normalises hosts as a user types them and builds the record.
func newRecord(name string, hosts []string) (site.Record, error) {
	norm := make([]string, len(hosts))
	for i, h := range hosts {
		norm[i] = site.NormalizeHost(h)
		if wild, ok := strings.CutPrefix(h, "*."); ok {
			norm[i] = "*." + site.NormalizeHost(wild)
		}
	}
	slices.Sort(norm)
	return site.NewRecord(name, slices.Compact(norm))
}

// RemoveSite deletes the record of the site name and its current pointer, then collects its
// deploys: every deploy that no other site keeps, and every blob that no kept deploy of any
// site names (see collect); then it deletes the site's History. It
// refuses a site that does not exist (ErrNoSite). Removing the site site.DefaultSite deletes
// "site/current" too, so edges of the previous release stop following a deploy.
func RemoveSite(ctx context.Context, name string, opts NetworkOptions) ([]site.DeployID, error) {
	if err := site.CheckSiteName(name); err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	s, err := openSession(ctx, opts, false)
	if err != nil {
		return nil, err
	}
	defer s.close()
	var keys []string
	for _, k := range []string{site.RecordKey(name), site.CurrentKeyOf(name)} {
		if s.node.Has(k) {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%w: %s", ErrNoSite, name)
	}
	if err := s.deleteConfirmed(ctx, keys); err != nil {
		return nil, fmt.Errorf("publish: remove site %s: %w", name, err)
	}
	// The History goes last: until then its deploys are no other site's, so the collection
	// takes them, and a removal that dies before its end leaves them to the next collection.
	collected, err := s.collect(ctx, "", 0)
	if err != nil {
		return collected, err
	}
	if key := site.HistoryKey(name); key != "" && s.node.Has(key) {
		if err := s.deleteConfirmed(ctx, []string{key}); err != nil {
			return collected, fmt.Errorf("publish: remove the deploys of site %s: %w", name, err)
		}
	}
	return collected, nil
}

// deleteConfirmed deletes keys and waits until a peer holds the last deletion (a peer's
// acknowledgement covers the log up to a point, so the others too).
func (s *session) deleteConfirmed(ctx context.Context, keys []string) error {
	if err := s.node.DeleteMany(ctx, keys); err != nil {
		return err
	}
	if err := s.replicated(ctx, keys[len(keys)-1]); err != nil {
		return fmt.Errorf("not confirmed by a peer: %w", err)
	}
	return nil
}

// sites reads every site record the table holds, sorted by name, and whether the default site
// exists implicitly. A record that does not parse is skipped: a master wrote it, but a node of
// this release cannot serve it, and neither can it claim hosts here.
func (s *session) sites(ctx context.Context) ([]site.Record, bool, error) {
	var records []site.Record
	for key := range s.node.ObjectKeys() {
		if _, ok := site.ParseRecordKey(key); !ok {
			continue
		}
		raw, err := s.node.Get(ctx, key)
		if errors.Is(err, dt.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, false, fmt.Errorf("publish: read %s: %w", key, err)
		}
		r, err := site.ParseRecordAt(key, raw)
		if err != nil {
			s.log.Warn("Site record refused", "key", key, "err", err)
			continue
		}
		records = append(records, r)
	}
	slices.SortFunc(records, func(a, b site.Record) int { return cmp.Compare(a.Name, b.Name) })
	return records, site.ImplicitDefault(records, s.node.Has(site.CurrentKey)), nil
}

// siteSettings returns the settings of the site name's record; none when it has no record.
func (s *session) siteSettings(ctx context.Context, name string) (site.Settings, error) {
	records, _, err := s.sites(ctx)
	if err != nil {
		return site.Settings{}, err
	}
	for _, r := range records {
		if r.Name == name && r.Settings != nil {
			return *r.Settings, nil
		}
	}
	return site.Settings{}, nil
}

// pointer returns the deploy the site name's current pointer names, and false when it has none.
func (s *session) pointer(ctx context.Context, name string) (site.DeployID, bool, error) {
	key := site.CurrentKeyOf(name)
	if !s.node.Has(key) {
		return site.DeployID{}, false, nil
	}
	raw, err := s.node.Get(ctx, key)
	if errors.Is(err, dt.ErrNotFound) {
		return site.DeployID{}, false, nil
	}
	if err != nil {
		return site.DeployID{}, false, fmt.Errorf("publish: read %s: %w", key, err)
	}
	cur, err := site.ParseCurrent(raw)
	if err != nil {
		return site.DeployID{}, false, fmt.Errorf("publish: %s: %w", key, err)
	}
	return cur.Deploy, true, nil
}

// currents returns every site's current deploy, by site name, as the pointers in the table
// name them (a pointer that does not parse names nothing).
func (s *session) currents(ctx context.Context) (map[string]site.DeployID, error) {
	out := map[string]site.DeployID{}
	for key := range s.node.ObjectKeys() {
		name, ok := site.ParseCurrentKey(key)
		if !ok {
			continue
		}
		id, ok, err := s.pointer(ctx, name)
		if err != nil {
			s.log.Warn("Current pointer refused", "key", key, "err", err)
			continue
		}
		if ok {
			out[name] = id
		}
	}
	return out, nil
}

// histories returns the deploys each existing site keeps among all, in all's order (newest
// published first): for a site other than site.DefaultSite, those its History lists; for
// site.DefaultSite, if it exists, those no History lists, since a deploy does not name its site
// and the default site's publishes write no History, as before there were sites. A History whose site
// no longer exists (no record, no current pointer: RemoveSite died before deleting it) keeps
// nothing, but its deploys are still not the default site's.
func (s *session) histories(ctx context.Context, all []kept) (map[string][]kept, error) {
	out := map[string][]kept{}
	listed := map[site.DeployID]bool{}
	for key := range s.node.ObjectKeys() {
		name, ok := site.ParseHistoryKey(key)
		if !ok {
			continue
		}
		h, err := s.history(ctx, name)
		if err != nil {
			return nil, err
		}
		in := map[site.DeployID]bool{}
		for _, id := range h.Deploys {
			in[id], listed[id] = true, true
		}
		if !s.node.Has(site.RecordKey(name)) && !s.node.Has(site.CurrentKeyOf(name)) {
			continue
		}
		for _, k := range all {
			if in[k.id] {
				out[name] = append(out[name], k)
			}
		}
	}
	if !s.node.Has(site.RecordKey(site.DefaultSite)) && !s.node.Has(site.CurrentKey) {
		return out, nil // no default site: nothing keeps the deploys no History lists
	}
	for _, k := range all {
		if !listed[k.id] {
			out[site.DefaultSite] = append(out[site.DefaultSite], k)
		}
	}
	return out, nil
}

// siteDeploys returns the deploys the site name keeps, newest published first.
func (s *session) siteDeploys(ctx context.Context, name string) ([]kept, error) {
	all, err := s.deploys(ctx)
	if err != nil {
		return nil, err
	}
	h, err := s.histories(ctx, all)
	if err != nil {
		return nil, err
	}
	return h[name], nil
}

// history reads the History of the site name; none reads as an empty one.
func (s *session) history(ctx context.Context, name string) (site.History, error) {
	key := site.HistoryKey(name)
	if key == "" || !s.node.Has(key) {
		return site.History{V: site.RecordVersion}, nil
	}
	raw, err := s.node.Get(ctx, key)
	if errors.Is(err, dt.ErrNotFound) {
		return site.History{V: site.RecordVersion}, nil
	}
	if err != nil {
		return site.History{}, fmt.Errorf("publish: read %s: %w", key, err)
	}
	h, err := site.ParseHistory(raw)
	if err != nil {
		return site.History{}, fmt.Errorf("publish: %s: %w", key, err)
	}
	return h, nil
}

// pushHistory puts id first in the History of the site name, dropping the deploys the table no
// longer holds, and waits until a peer holds it. The default site has no History.
func (s *session) pushHistory(ctx context.Context, name string, id site.DeployID) error {
	key := site.HistoryKey(name)
	if key == "" {
		return nil
	}
	h, err := s.history(ctx, name)
	if err != nil {
		return err
	}
	body, err := h.Push(id, func(d site.DeployID) bool { return s.node.Has(site.DeployKey(d)) }).Marshal()
	if err != nil {
		return err
	}
	if err := s.node.Put(ctx, key, body); err != nil {
		return fmt.Errorf("publish: write the deploys of site %s: %w", name, err)
	}
	return nil
}

// resolveSite returns the site a command acts on: want, which must exist, or when want is
// empty the network's only site. See NetworkOptions.Site.
func (s *session) resolveSite(ctx context.Context, want string) (string, error) {
	records, implicit, err := s.sites(ctx)
	if err != nil {
		return "", err
	}
	var names []string
	if implicit {
		names = append(names, site.DefaultSite)
	}
	for _, r := range records {
		names = append(names, r.Name)
	}
	slices.Sort(names)
	switch {
	case want == "" && len(names) == 1:
		return names[0], nil
	case (want == "" || want == site.DefaultSite) && len(names) == 0:
		// A network with no site yet: its first publish makes the default site.
		return site.DefaultSite, nil
	case want == "":
		return "", fmt.Errorf("%w: the network has sites %s", ErrSiteRequired, strings.Join(names, ", "))
	case slices.Contains(names, want):
		return want, nil
	}
	if err := site.CheckSiteName(want); err != nil {
		return "", err
	}
	return "", fmt.Errorf("%w: %s (the network has: %s; add it with dt site add)", ErrNoSite, want, strings.Join(names, ", "))
}
