package publish

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dt-cdn/dt/blobs"
	"github.com/dt-cdn/dt/dt"
	"github.com/dt-cdn/dt/heartbeat"
	"github.com/dt-cdn/dt/internal/client"
	"github.com/dt-cdn/dt/site"
)

// DefaultKeep is how many deploys a site keeps when neither the publisher nor the site's
// settings say: enough to roll back over a bad week of publishes, while the blobs of older
// deploys are freed.
const DefaultKeep = 10

// NetworkOptions configure how a plan is published to a dt network.
type NetworkOptions struct {
	// Keys must hold the network key and a master key.
	Keys dt.Keys
	// Peers are the nodes to dial (any node of the network). At least one.
	Peers []string
	// Site is the site published to, rolled back or listed. Empty: the network's only site
	// (its one record, or the implicit site.DefaultSite; site.DefaultSite on a network with no
	// site yet), and an error wrapping ErrSiteRequired, naming the sites, when it has several.
	// A site must exist before it is published to (AddSite), except site.DefaultSite on a
	// network with no site at all, whose first publish makes it, as before there were sites.
	Site string
	// Keep is how many deploys the site published to keeps (for rollback); older ones and the
	// blobs no kept deploy of any site uses are collected. Zero: the site's keep setting
	// (site.Settings.Keep), or DefaultKeep when it has none.
	Keep int
	// Wait bounds how long Publish waits for the edges to serve the deploy. Zero: 2 min. The
	// upload itself is bounded by ctx only.
	Wait time.Duration
	// ConnectTimeout bounds how long a session waits to link to a peer and sync the table, and
	// how long it waits for a peer to confirm a write, so that an unreachable network fails the
	// command instead of hanging it. Zero: 2 min.
	ConnectTimeout time.Duration
	// Events, when set, sees every event of the transient node, on its event goroutine (a
	// failed handshake shows up there, to explain a failure to connect). It must not block.
	Events func(dt.Event)
	// HeartbeatInterval is the edges' heartbeat interval, to know how long to listen before the
	// set of edges is known. Zero: 2 s.
	HeartbeatInterval time.Duration
	// DryRun computes what would be sent and sends nothing.
	DryRun bool
	// Progress receives the steps of the publish as they happen. Optional; called from one
	// goroutine at a time.
	Progress func(Step)
	// CacheDir keeps the publisher's copy of the table between runs (records, no file data), so
	// a publish syncs only what changed since the last one. Empty: a temporary copy each time.
	CacheDir string
	// Scanned, used by PublishDir, is called once the directory is scanned (to report it).
	Scanned func(*Plan)
	// Logger receives the transient node's logs. Nil discards them.
	Logger *slog.Logger
	// Node tunes the transient node (timers for tests). Keys, Master, DataDir, Peers, LazyBodies
	// are set by Publish.
	Node dt.Config
}

// Phase names a step of a publish.
type Phase string

// Phases of a publish, in order.
const (
	PhaseConnecting Phase = "connecting" // linking to the network and learning its state
	PhaseUploading  Phase = "uploading"  // sending the blobs the network lacks
	PhaseSwitching  Phase = "switching"  // writing the manifest and the current pointer
	PhaseWaiting    Phase = "waiting"    // waiting for the edges to serve it
	PhaseCollecting Phase = "collecting" // removing deploys beyond Keep
)

// Step reports progress.
type Step struct {
	Phase                 Phase
	BlobsSent, BlobsTotal int
	BytesSent, BytesTotal int64 // raw bytes of the blobs
	EdgesLive, EdgesTotal int
	Elapsed               time.Duration
}

// Result is what a publish did.
type Result struct {
	// Site is the site published to or rolled back.
	Site      string          `json:"site,omitempty"`
	Deploy    site.DeployID   `json:"deploy"`
	Previous  site.DeployID   `json:"previous"`
	Files     int             `json:"files"`
	Diff      Diff            `json:"diff"`
	BlobsSent int             `json:"blobs_sent"`
	BytesSent int64           `json:"bytes_sent"`      // raw bytes of the blobs sent
	WireBytes uint64          `json:"wire_bytes_sent"` // bytes the node put on the network, all included
	Edges     []EdgeResult    `json:"edges"`
	EdgesLive int             `json:"edges_live"`
	Collected []site.DeployID `json:"collected,omitempty"`
	DryRun    bool            `json:"dry_run,omitempty"`
	// Unchanged is set when the site is identical to the current deploy (all but its time):
	// no deploy was made, and Deploy is the current one.
	Unchanged bool `json:"unchanged,omitempty"`
	// SPA and CleanURLs are the deploy's serving settings.
	SPA       bool     `json:"spa"`
	CleanURLs bool     `json:"clean_urls"`
	Warnings  []string `json:"warnings,omitempty"`
}

// EdgeResult is one edge's state at the end of the wait.
type EdgeResult struct {
	Node string `json:"node"`
	// Name is what the edge's operator calls it (its heartbeat's name); empty when it has none.
	Name   string `json:"name,omitempty"`
	URL    string `json:"url"`
	Live   bool   `json:"live"`   // serves this deploy
	Deploy string `json:"deploy"` // what it serves
}

// ErrNotLive is returned (with a Result) when the deploy is in the table but not every live
// edge serves it by the end of the wait; ErrNoEdges when no edge was heard from at all.
var (
	ErrNotLive = errors.New("publish: not live on every edge")
	ErrNoEdges = errors.New("publish: no edge reported")
)

// Publish sends a plan to the network: only the blobs the network lacks, then the manifest and the
// current pointer (so edges switch only once they hold every blob), then it waits for the edges'
// heartbeats to report the deploy, and collects deploys beyond Keep. With Keep zero, the site's
// keep setting applies; its serving settings apply only through PublishDir, since the plan's
// manifest is already made.
func Publish(ctx context.Context, plan *Plan, opts NetworkOptions) (Result, error) {
	opts = opts.withDefaults()
	step := opts.stepper()
	step(Step{Phase: PhaseConnecting})
	s, err := openSession(ctx, opts, opts.DryRun)
	if err != nil {
		return Result{Files: len(plan.Manifest.Files), DryRun: opts.DryRun}, err
	}
	defer s.close()
	name, err := s.resolveSite(ctx, opts.Site)
	if err != nil {
		return Result{Files: len(plan.Manifest.Files), DryRun: opts.DryRun}, err
	}
	settings, err := s.siteSettings(ctx, name)
	if err != nil {
		return Result{Files: len(plan.Manifest.Files), DryRun: opts.DryRun}, err
	}
	opts.Keep = cmp.Or(max(opts.Keep, 0), settings.Keep, DefaultKeep)
	prev, prevID, err := s.current(ctx, name)
	if err != nil {
		return Result{Files: len(plan.Manifest.Files), DryRun: opts.DryRun}, err
	}
	return s.publish(ctx, plan, name, prev, prevID, opts, step)
}

// PublishDir scans dir and publishes it, like Scan followed by Publish, but links to the network
// first so that files unchanged since the current deploy reuse its compressed variants
// (ScanOptions.Previous): a republish of a large site then costs reading it, not recompressing
// it. The site's settings (its record's site.Settings) apply where scan leaves SPA and clean
// URLs to the site (KeepSPA, KeepCleanURLs) and opts leaves Keep at zero. The plan's warnings
// are in the result.
func PublishDir(ctx context.Context, dir string, scan ScanOptions, opts NetworkOptions) (Result, error) {
	opts = opts.withDefaults()
	step := opts.stepper()
	step(Step{Phase: PhaseConnecting})
	s, err := openSession(ctx, opts, opts.DryRun)
	if err != nil {
		return Result{DryRun: opts.DryRun}, err
	}
	defer s.close()
	name, err := s.resolveSite(ctx, opts.Site)
	if err != nil {
		return Result{DryRun: opts.DryRun}, err
	}
	settings, err := s.siteSettings(ctx, name)
	if err != nil {
		return Result{DryRun: opts.DryRun}, err
	}
	scan, opts.Keep = scan.withSiteSettings(settings), cmp.Or(max(opts.Keep, 0), settings.Keep, DefaultKeep)
	prev, prevID, err := s.current(ctx, name)
	if err != nil {
		return Result{DryRun: opts.DryRun}, err
	}
	scan.Previous = prev
	plan, err := Scan(ctx, dir, scan)
	if err != nil {
		return Result{DryRun: opts.DryRun}, err
	}
	defer plan.Close()
	if opts.Scanned != nil {
		opts.Scanned(plan)
	}
	return s.publish(ctx, plan, name, prev, prevID, opts, step)
}

func (o NetworkOptions) stepper() func(Step) {
	began := time.Now()
	return func(s Step) {
		if o.Progress != nil {
			s.Elapsed = time.Since(began)
			o.Progress(s)
		}
	}
}

// publish sends plan over an open session: the blobs the network lacks, the manifest, the
// pointer; then it waits for the edges and collects old deploys.
func (s *session) publish(ctx context.Context, plan *Plan, name string, prev *site.Manifest, prevID site.DeployID, opts NetworkOptions, step func(Step)) (Result, error) {
	res := Result{Site: name, Files: len(plan.Manifest.Files), DryRun: opts.DryRun, Previous: prevID, Warnings: plan.Warnings,
		SPA: plan.Manifest.SPA, CleanURLs: plan.Manifest.CleanURLs}
	if same, err := sameSite(plan.Manifest, prev, prevID); err != nil {
		return res, err
	} else if same {
		// A new deploy of the same site would differ only in its time, and take a --keep slot
		// from a deploy worth rolling back to.
		res.Deploy, res.Unchanged = prevID, true
		res.Diff = plan.Diff(prev, func(h blobs.Hash) bool { return s.node.Has(site.BlobKey(h)) })
		if opts.DryRun {
			return res, nil
		}
		res.Edges, res.EdgesLive, err = s.waitLive(ctx, name, prevID, opts, func(live, all int) {
			step(Step{Phase: PhaseWaiting, EdgesLive: live, EdgesTotal: all})
		})
		return res, err
	}
	id, err := plan.Manifest.ID()
	if err != nil {
		return res, err
	}
	res.Deploy = id
	res.Diff = plan.Diff(prev, func(h blobs.Hash) bool { return s.node.Has(site.BlobKey(h)) })
	for _, h := range res.Diff.Send {
		if _, ok := plan.Sources[h]; !ok {
			return res, fmt.Errorf("publish: blob %s, a variant reused from the current deploy, is not in the network; scan without ScanOptions.Previous", h.Short())
		}
	}
	if opts.DryRun {
		return res, nil
	}

	total := Step{Phase: PhaseUploading, BlobsTotal: len(res.Diff.Send), BytesTotal: res.Diff.SendBytes}
	step(total)
	if err := s.upload(ctx, plan, res.Diff.Send, func(blobs int, bytes int64) {
		total.BlobsSent, total.BytesSent = blobs, bytes
		step(total)
	}); err != nil {
		return res, err
	}
	res.BlobsSent, res.BytesSent = len(res.Diff.Send), res.Diff.SendBytes

	step(Step{Phase: PhaseSwitching})
	if err := s.switchTo(ctx, name, plan.Manifest, id); err != nil {
		return res, err
	}

	res.Edges, res.EdgesLive, err = s.waitLive(ctx, name, id, opts, func(live, all int) {
		step(Step{Phase: PhaseWaiting, EdgesLive: live, EdgesTotal: all})
	})
	if err == nil || errors.Is(err, ErrNotLive) || errors.Is(err, ErrNoEdges) {
		step(Step{Phase: PhaseCollecting})
		collected, cerr := s.collect(ctx, name, opts.Keep)
		res.Collected = collected
		if cerr != nil && err == nil {
			err = cerr
		}
	}
	_, res.WireBytes = s.node.WireBytes()
	return res, err
}

// sameSite reports whether m is the deploy prevID (read as prev) but for its time.
func sameSite(m, prev *site.Manifest, prevID site.DeployID) (bool, error) {
	if prev == nil {
		return false, nil
	}
	c := *m
	c.Created = prev.Created
	id, err := c.ID()
	if err != nil {
		return false, err
	}
	return id == prevID, nil
}

func (o NetworkOptions) withDefaults() NetworkOptions {
	if o.Wait <= 0 {
		o.Wait = 2 * time.Minute
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = 2 * time.Minute
	}
	if o.HeartbeatInterval <= 0 {
		o.HeartbeatInterval = 2 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// session is a transient master linked to the network: it keeps records without their large
// bodies (it needs to know what the network holds, not its data) and listens to heartbeats.
type session struct {
	node    *dt.Node
	dir     string
	tracker *heartbeat.Tracker
	done    chan struct{}
	wg      sync.WaitGroup
	log     *slog.Logger
	// confirmWait bounds each wait for a peer to acknowledge a write.
	confirmWait time.Duration
	// sitesGen counts the changes to the table's site records and current pointers the session
	// has seen, so that a wait reads them again only when they changed.
	sitesGen atomic.Uint64
}

// replicated waits until a peer holds key, for at most confirmWait.
func (s *session) replicated(ctx context.Context, key string) error {
	ctx, cancel := context.WithTimeout(ctx, s.confirmWait)
	defer cancel()
	return s.node.WaitReplicated(ctx, key, 1)
}

// openSession links a transient node to the network and syncs the table. A readOnly session
// (a dry run, a listing) needs no master key.
func openSession(ctx context.Context, opts NetworkOptions, readOnly bool) (*session, error) {
	if len(opts.Peers) == 0 {
		return nil, errors.New("publish: no peer to publish to (--peer)")
	}
	if opts.Keys.Master == nil && opts.Keys.Publisher == nil && !readOnly {
		return nil, fmt.Errorf("publish: %w", dt.ErrNotMaster)
	}
	cfg := opts.Node
	cfg.Keys, cfg.Master, cfg.Peers, cfg.LazyBodies = opts.Keys, opts.Keys.Master != nil || opts.Keys.Publisher != nil, opts.Peers, true
	cfg.Logger = opts.Logger
	// The cache is only a copy: when another publish holds it, or it is unusable, a temporary
	// one does.
	node, dir, err := client.OpenNode(cfg, opts.CacheDir)
	if err != nil {
		return nil, err
	}
	s := &session{node: node, dir: dir, done: make(chan struct{}), confirmWait: opts.ConnectTimeout, log: opts.Logger,
		tracker: heartbeat.NewTracker(heartbeat.Config{Interval: opts.HeartbeatInterval})}
	events := node.Events() // before any write, so that its errors are on the channel
	s.wg.Go(func() {
		for ev := range events {
			if opts.Events != nil {
				opts.Events(ev)
			}
			if ev.Type == dt.EventObjectAdded || ev.Type == dt.EventObjectRemoved {
				if _, ok := site.ParseRecordKey(ev.Key); ok {
					s.sitesGen.Add(1)
				} else if _, ok := site.ParseCurrentKey(ev.Key); ok {
					s.sitesGen.Add(1)
				}
			}
			if ev.Type != dt.EventMessageReceived {
				continue
			}
			if h, err := heartbeat.Decode(ev.Object); err == nil {
				s.tracker.Observe(ev.From.String(), h, time.Now())
			}
		}
	})
	syncCtx, cancel := context.WithTimeout(ctx, opts.ConnectTimeout)
	defer cancel()
	if err := node.WaitSynced(syncCtx); err != nil {
		s.close()
		return nil, fmt.Errorf("publish: could not sync with %v: %w", opts.Peers, err)
	}
	return s, nil
}

// listen waits for d or the end of ctx, while the session hears heartbeats.
func (s *session) listen(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

func (s *session) close() {
	s.node.Close()
	s.wg.Wait()
	if s.dir != "" {
		os.RemoveAll(s.dir)
	}
}

// current returns the current deploy of the site name, if any.
func (s *session) current(ctx context.Context, name string) (*site.Manifest, site.DeployID, error) {
	key := site.CurrentKeyOf(name)
	if !s.node.Has(key) {
		return nil, site.DeployID{}, nil
	}
	raw, err := s.node.Get(ctx, key)
	if err != nil {
		return nil, site.DeployID{}, fmt.Errorf("publish: read current deploy of site %s: %w", name, err)
	}
	cur, err := site.ParseCurrent(raw)
	if err != nil {
		return nil, site.DeployID{}, err
	}
	m, err := s.manifest(ctx, cur.Deploy)
	if errors.Is(err, dt.ErrNotFound) {
		// The pointer names a deploy no reachable node holds (its publisher died before a peer
		// had the manifest): compare with nothing; blobs the network has are still not resent.
		return nil, cur.Deploy, nil
	}
	if err != nil {
		return nil, cur.Deploy, err
	}
	return m, cur.Deploy, nil
}

func (s *session) manifest(ctx context.Context, id site.DeployID) (*site.Manifest, error) {
	m, _, err := s.readManifest(ctx, id)
	return m, err
}

// upload sends blobs in batches of about 8 MiB of objects, each batch committed at once.
func (s *session) upload(ctx context.Context, plan *Plan, send []blobs.Hash, progress func(int, int64)) error {
	const batchBytes = 8 << 20
	var (
		keys   []string
		bodies [][]byte
		size   int
		done   int
		bytes  int64
	)
	flush := func() error {
		if len(keys) == 0 {
			return nil
		}
		if err := s.node.PutMany(ctx, keys, bodies); err != nil {
			return fmt.Errorf("publish: upload: %w", err)
		}
		keys, bodies, size = keys[:0], bodies[:0], 0
		progress(done, bytes)
		return nil
	}
	for _, h := range send {
		raw, err := plan.ReadBlob(h)
		if err != nil {
			return err
		}
		obj, err := site.EncodeBlob(raw)
		if err != nil {
			return err
		}
		keys, bodies = append(keys, site.BlobKey(h)), append(bodies, obj)
		size += len(obj)
		done++
		bytes += int64(len(raw))
		if size >= batchBytes {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}

// switchTo writes the manifest, waits until a peer holds it (and so every blob before it, since a
// peer's acknowledgement covers the log up to a point), and only then writes the site's current
// pointer and waits for that too. A publisher killed at any moment leaves the network pointing
// either at the previous deploy or at one whose every part a peer holds. For a site other than
// site.DefaultSite, the site's History names the deploy before its manifest is written, so that
// no collection meanwhile takes it for one of the default site's.
func (s *session) switchTo(ctx context.Context, name string, m *site.Manifest, id site.DeployID) error {
	if err := s.pushHistory(ctx, name, id); err != nil {
		return err
	}
	if err := s.writeManifest(ctx, m, id); err != nil {
		return err
	}
	if err := s.replicated(ctx, site.DeployKey(id)); err != nil {
		return fmt.Errorf("publish: manifest not confirmed by a peer: %w", err)
	}
	return s.point(ctx, name, id)
}

// point makes a kept deploy the site's current one (a rollback): only the pointer is written,
// so the deploys keep their publish order.
func (s *session) point(ctx context.Context, name string, id site.DeployID) error {
	cur, err := site.Current{Deploy: id, Time: time.Now()}.Marshal()
	if err != nil {
		return err
	}
	key := site.CurrentKeyOf(name)
	if err := s.node.Put(ctx, key, cur); err != nil {
		return fmt.Errorf("publish: write current deploy of site %s: %w", name, err)
	}
	return s.confirm(ctx, key)
}

func (s *session) confirm(ctx context.Context, key string) error {
	if err := s.replicated(ctx, key); err != nil {
		return fmt.Errorf("publish: deploy written but not confirmed by a peer: %w", err)
	}
	return nil
}

// waitLive listens to heartbeats until every live edge serves id as the site name's current
// deploy, or the wait ends. It listens at least 1.5 heartbeat intervals first, so that edges
// which have not spoken since the session began are counted. Which edges serve it is liveRule's
// verdict.
func (s *session) waitLive(ctx context.Context, name string, id site.DeployID, opts NetworkOptions, progress func(live, all int)) ([]EdgeResult, int, error) {
	ctx, cancel := context.WithTimeout(ctx, opts.Wait)
	defer cancel()
	listenUntil := time.Now().Add(opts.HeartbeatInterval * 3 / 2)
	var rule liveRule
	for {
		if err := s.refreshRule(ctx, &rule, name); err != nil {
			return nil, 0, err
		}
		edges, live := rule.results(s.tracker.Edges(), id)
		progress(live, len(edges))
		if time.Now().After(listenUntil) && len(edges) > 0 && live == len(edges) {
			return edges, live, nil
		}
		changed := s.tracker.Changed()
		t := time.NewTimer(250 * time.Millisecond)
		select {
		case <-changed:
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			if len(edges) == 0 {
				return edges, 0, ErrNoEdges
			}
			return edges, live, fmt.Errorf("%w: %d of %d", ErrNotLive, live, len(edges))
		}
		t.Stop()
	}
}

// kept is a deploy the network keeps.
type kept struct {
	id      site.DeployID
	m       *site.Manifest
	version uint64       // when it was published, as the table orders writes
	chunks  []blobs.Hash // the manifest's own chunks, when stored as a reference
}

// blobs returns every blob the deploy uses: its files' and its manifest's.
// blobs returns the deploy's blobs in the table (not those the nodes derive), and its manifest's
// chunks.
func (k kept) blobs() []blobs.Hash { return append(k.m.TableBlobs(), k.chunks...) }

// deploys returns the kept deploys, newest published first.
func (s *session) deploys(ctx context.Context) ([]kept, error) {
	var all []kept
	for key := range s.node.ObjectKeys() {
		id, ok := site.ParseDeployKey(key)
		if !ok {
			continue
		}
		m, chunks, err := s.readManifest(ctx, id)
		if err != nil {
			return nil, err
		}
		v, _ := s.node.Version(key)
		all = append(all, kept{id: id, m: m, version: v, chunks: chunks})
	}
	slices.SortFunc(all, func(a, b kept) int { return cmp.Compare(b.version, a.version) })
	return all, nil
}

// collect removes the deploys no site keeps, their manifests first and then the blobs no kept
// deploy uses. The site name (the one just published to; "" for none) keeps its current deploy
// and the newest of its deploys up to keep (its history: histories); every other site keeps its
// current deploy and its whole history, which its own publishes cut, so that one site's --keep
// never shortens another's. A deploy is collected only when no site keeps it (the deploys of a
// removed site, which no site's history holds any more), and a blob only when no kept deploy of
// any site names it, since blobs are shared between sites.
func (s *session) collect(ctx context.Context, name string, keep int) ([]site.DeployID, error) {
	all, err := s.deploys(ctx)
	if err != nil {
		return nil, err
	}
	keptIDs, err := s.keptBySites(ctx, all, name, keep)
	if err != nil {
		return nil, err
	}
	inUse := map[blobs.Hash]bool{}
	var drop []kept
	for _, k := range all {
		if !keptIDs[k.id] {
			drop = append(drop, k)
			continue
		}
		for _, h := range k.blobs() {
			inUse[h] = true
		}
	}
	if len(drop) == 0 {
		return nil, nil
	}
	var dropKeys, blobKeys []string
	var dropped []site.DeployID
	for _, k := range drop {
		dropped = append(dropped, k.id)
		dropKeys = append(dropKeys, site.DeployKey(k.id))
		for _, h := range k.blobs() {
			if !inUse[h] {
				inUse[h] = true // once
				blobKeys = append(blobKeys, site.BlobKey(h))
			}
		}
	}
	// Manifests first: an edge frees a blob only when no manifest it keeps names it.
	if err := s.node.DeleteMany(ctx, dropKeys); err != nil {
		return nil, err
	}
	if err := s.node.DeleteMany(ctx, blobKeys); err != nil {
		return nil, err
	}
	// The session ends right after: wait until a peer holds the last removal (the log carries
	// the others before it).
	last := dropKeys[len(dropKeys)-1]
	if len(blobKeys) > 0 {
		last = blobKeys[len(blobKeys)-1]
	}
	if err := s.replicated(ctx, last); err != nil {
		return dropped, fmt.Errorf("publish: collected deploys not confirmed by a peer: %w", err)
	}
	return dropped, nil
}

// keptBySites returns the deploys among all that some site keeps: every site's current deploy,
// the newest keep of the site name's history (its current deploy counted first), and the whole
// history of every other site, whose deploys only its own publishes collect.
func (s *session) keptBySites(ctx context.Context, all []kept, name string, keep int) (map[site.DeployID]bool, error) {
	currents, err := s.currents(ctx)
	if err != nil {
		return nil, err
	}
	keptIDs := map[site.DeployID]bool{}
	for _, id := range currents {
		keptIDs[id] = true
	}
	histories, err := s.histories(ctx, all)
	if err != nil {
		return nil, err
	}
	for other, history := range histories {
		n := len(history)
		if other == name {
			n = min(keep, n)
		}
		// The current deploy first (a rollback makes an older one current), then newest first.
		rank := func(k kept) int {
			if k.id == currents[other] {
				return 0
			}
			return 1
		}
		slices.SortStableFunc(history, func(a, b kept) int { return cmp.Compare(rank(a), rank(b)) })
		for _, k := range history[:n] {
			keptIDs[k.id] = true
		}
	}
	return keptIDs, nil
}

// DeployInfo describes one kept deploy.
type DeployInfo struct {
	ID      site.DeployID `json:"id"`
	Created time.Time     `json:"created"`
	Files   int           `json:"files"`
	Bytes   int64         `json:"bytes"`
	Current bool          `json:"current"`
	LiveOn  []string      `json:"live_on"` // public URLs of the edges serving it
	// SPA and CleanURLs are the deploy's serving settings.
	SPA       bool `json:"spa"`
	CleanURLs bool `json:"clean_urls"`
}

// Deploys lists the deploys the network keeps for the site opts.Site, newest first, with the
// edges serving each (from one and a half heartbeat intervals of listening). For a site other
// than site.DefaultSite heartbeats tell only which edges serve its current deploy (liveRule), so
// its other deploys list no edge.
func Deploys(ctx context.Context, opts NetworkOptions) ([]DeployInfo, error) {
	opts = opts.withDefaults()
	s, err := openSession(ctx, opts, true)
	if err != nil {
		return nil, err
	}
	defer s.close()
	name, err := s.resolveSite(ctx, opts.Site)
	if err != nil {
		return nil, err
	}
	_, current, err := s.current(ctx, name)
	if err != nil {
		return nil, err
	}
	all, err := s.siteDeploys(ctx, name)
	if err != nil {
		return nil, err
	}
	out := make([]DeployInfo, 0, len(all))
	for _, k := range all {
		info := DeployInfo{ID: k.id, Created: k.m.Created, Files: len(k.m.Files), Current: k.id == current, LiveOn: []string{},
			SPA: k.m.SPA, CleanURLs: k.m.CleanURLs}
		for _, f := range k.m.Files {
			info.Bytes += f.Size
		}
		out = append(out, info)
	}
	s.listen(ctx, opts.HeartbeatInterval*3/2)
	var rule liveRule
	if err := s.refreshRule(ctx, &rule, name); err != nil {
		return nil, err
	}
	for _, e := range s.tracker.Edges() {
		if e.State != heartbeat.Alive {
			continue
		}
		for i := range out {
			if live, _ := rule.serves(e.Last, out[i].ID); live {
				out[i].LiveOn = append(out[i].LiveOn, e.Last.PublicURL)
			}
		}
	}
	return out, nil
}

// FindDeploy returns the kept deploy that prefix names: a full deploy id (returned as it is,
// without asking the network) or a prefix of one that only one kept deploy has, in any case.
func FindDeploy(ctx context.Context, opts NetworkOptions, prefix string) (site.DeployID, error) {
	if id, err := site.ParseDeployID(prefix); err == nil {
		return id, nil
	}
	list, err := Deploys(ctx, opts)
	if err != nil {
		return site.DeployID{}, err
	}
	var found []site.DeployID
	for _, d := range list {
		if strings.HasPrefix(d.ID.String(), strings.ToLower(prefix)) {
			found = append(found, d.ID)
		}
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		return site.DeployID{}, fmt.Errorf("no kept deploy starts with %q", prefix)
	}
	return site.DeployID{}, fmt.Errorf("%q names %d deploys; give more of the id", prefix, len(found))
}

// Rollback makes a kept deploy of the site opts.Site current again; nothing is uploaded, since
// the network holds every blob of a kept deploy. A zero id means the site's newest deploy older
// than its current one. A deploy of another site is refused. It waits for the edges like
// Publish. Other sites' pointers and deploys are not touched.
func Rollback(ctx context.Context, id site.DeployID, opts NetworkOptions) (Result, error) {
	opts = opts.withDefaults()
	s, err := openSession(ctx, opts, false)
	if err != nil {
		return Result{}, err
	}
	defer s.close()
	name, err := s.resolveSite(ctx, opts.Site)
	if err != nil {
		return Result{}, err
	}
	_, current, err := s.current(ctx, name)
	if err != nil {
		return Result{}, err
	}
	all, err := s.siteDeploys(ctx, name)
	if err != nil {
		return Result{}, err
	}
	if id.IsZero() {
		// The deploy published just before the current one.
		for i, k := range all {
			if k.id == current && i+1 < len(all) {
				id = all[i+1].id
			}
		}
		if id.IsZero() {
			return Result{}, fmt.Errorf("publish: site %s has no earlier deploy to roll back to", name)
		}
	}
	if !slices.ContainsFunc(all, func(k kept) bool { return k.id == id }) {
		return Result{}, fmt.Errorf("publish: deploy %s is not one the network keeps for site %s", id.Short(), name)
	}
	m, err := s.manifest(ctx, id)
	if err != nil {
		return Result{}, err
	}
	res := Result{Site: name, Deploy: id, Previous: current, Files: len(m.Files)}
	if err := s.point(ctx, name, id); err != nil {
		return res, err
	}
	res.Edges, res.EdgesLive, err = s.waitLive(ctx, name, id, opts, func(int, int) {})
	_, res.WireBytes = s.node.WireBytes()
	return res, err
}
