package web

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/dt-cdn/dt/blobs"
	"github.com/dt-cdn/dt/dt"
	"github.com/dt-cdn/dt/site"
)

// Loader reads a table object, fetching its body from a peer when the node does not hold it.
// *dt.Node implements it.
type Loader interface {
	Get(ctx context.Context, key string) ([]byte, error)
}

// HistoryConfig configures a History. Zero values mean the defaults given per field.
type HistoryConfig struct {
	// Node reads deploy objects and manifest chunks: the node whose events feed the History.
	// Required.
	Node Loader
	// ReadTimeout bounds the reading of one manifest (its chunks may come from a peer). Zero: 30 s.
	ReadTimeout time.Duration
	// RetryAfter is how long a manifest that could not be read waits before the next attempt;
	// the wait doubles with each failure, up to 64 times RetryAfter. Zero: 15 s.
	RetryAfter time.Duration
	// Logger receives the History's logs. Nil discards them.
	Logger *slog.Logger
}

// History follows the deploys a node's table holds, for the dashboard's deploy history. Feed it
// every event of the node (HandleEvent) and run it (Run): events only note which deploys exist;
// Run reads their manifests (id, time, files, size), off the event goroutine, since a manifest
// stored as chunks may have to come from a peer. A manifest is read once: a deploy id names its
// content. It is safe for concurrent use.
type History struct {
	cfg HistoryConfig
	log *slog.Logger

	mu      sync.Mutex
	deploys map[site.DeployID]*deployEntry // guarded by mu
	arrived uint64                         // guarded by mu: events seen, to order unread deploys
	// pointers are, per site, the deploys its current pointer named, newest last, each once:
	// at most one entry per deploy the table holds (entries go with their deploy). Guarded by mu.
	pointers map[string][]site.DeployID

	wake chan struct{} // buffered 1: a deploy arrived
}

// deployEntry is one deploy of the table.
type deployEntry struct {
	info     Deploy
	object   []byte    // the deploy object from the event, until read; nil: load it
	order    uint64    // when it arrived
	retryAt  time.Time // after a failed read
	failures int       // failed reads so far
}

var _ DeploySource = (*History)(nil)

// NewHistory returns an empty History.
func NewHistory(cfg HistoryConfig) (*History, error) {
	if cfg.Node == nil {
		return nil, errors.New("web: HistoryConfig.Node is required")
	}
	if cfg.ReadTimeout <= 0 {
		cfg.ReadTimeout = 30 * time.Second
	}
	if cfg.RetryAfter <= 0 {
		cfg.RetryAfter = 15 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &History{cfg: cfg, log: cfg.Logger, deploys: map[site.DeployID]*deployEntry{}, pointers: map[string][]site.DeployID{},
		wake: make(chan struct{}, 1)}, nil
}

// HandleEvent notes deploys entering and leaving the table, and every site's current pointer;
// other events are ignored. It does not block. Call it with every event of the node, in order,
// from one goroutine.
func (h *History) HandleEvent(ev dt.Event) {
	if name, ok := site.ParseCurrentKey(ev.Key); ok {
		h.notePointer(ev, name)
		return
	}
	id, ok := site.ParseDeployKey(ev.Key)
	if !ok {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	switch ev.Type {
	case dt.EventObjectAdded:
		if h.deploys[id] != nil {
			return // the same id names the same manifest
		}
		h.arrived++
		h.deploys[id] = &deployEntry{info: Deploy{ID: id.String()}, object: ev.Object, order: h.arrived}
		select {
		case h.wake <- struct{}{}:
		default:
		}
	case dt.EventObjectRemoved:
		delete(h.deploys, id)
		for name, ids := range h.pointers {
			h.pointers[name] = slices.DeleteFunc(ids, func(x site.DeployID) bool { return x == id })
		}
	}
}

// notePointer records a site's current pointer: its deploy becomes the newest of the site's
// history. A pointer removed (its site removed) takes the site's history with it.
func (h *History) notePointer(ev dt.Event, name string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch ev.Type {
	case dt.EventObjectAdded:
		c, err := site.ParseCurrent(ev.Object)
		if err != nil {
			return // edgeset logs bad pointers; the history just leaves them out
		}
		ids := slices.DeleteFunc(h.pointers[name], func(x site.DeployID) bool { return x == c.Deploy })
		h.pointers[name] = append(ids, c.Deploy)
	case dt.EventObjectRemoved:
		delete(h.pointers, name)
	}
}

// SiteHistory returns, per site, the deploys its current pointer has named since the History
// started (a node replays the pointers it holds, so at least each site's current one), newest
// first, each once, of those the table still holds.
func (h *History) SiteHistory() map[string][]string {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make(map[string][]string, len(h.pointers))
	for name, ids := range h.pointers {
		list := make([]string, 0, len(ids))
		for i := len(ids) - 1; i >= 0; i-- {
			list = append(list, ids[i].String())
		}
		out[name] = list
	}
	return out
}

// Deploys returns the deploys, newest first: those whose manifest is not read yet (just
// published) first, then by creation time. Current is left false: the dashboard sets it from the
// redirector's current deploy.
func (h *History) Deploys() []Deploy {
	h.mu.Lock()
	entries := make([]*deployEntry, 0, len(h.deploys))
	for _, e := range h.deploys {
		entries = append(entries, e)
	}
	slices.SortFunc(entries, func(a, b *deployEntry) int {
		if a.info.Read != b.info.Read {
			if !a.info.Read {
				return -1
			}
			return 1
		}
		if c := b.info.Created.Compare(a.info.Created); c != 0 {
			return c
		}
		return cmp.Compare(b.order, a.order)
	})
	out := make([]Deploy, len(entries))
	for i, e := range entries {
		out[i] = e.info
	}
	h.mu.Unlock()
	return out
}

// Run reads the manifests of new deploys until ctx ends, retrying those that fail after
// RetryAfter. It returns nil when ctx is canceled.
func (h *History) Run(ctx context.Context) error {
	retry := time.NewTimer(time.Hour)
	defer retry.Stop()
	for {
		wait := time.Hour // nothing to retry: wait for a deploy
		if next := h.readPending(ctx); !next.IsZero() {
			wait = time.Until(next)
		}
		retry.Reset(wait)
		select {
		case <-h.wake:
		case <-retry.C:
		case <-ctx.Done():
			return nil
		}
	}
}

// readPending reads every unread manifest due for an attempt, and returns when the earliest
// failed one is due again (zero: none).
func (h *History) readPending(ctx context.Context) time.Time {
	type job struct {
		id     site.DeployID
		entry  *deployEntry
		object []byte
	}
	var (
		jobs []job
		next time.Time
	)
	now := time.Now()
	h.mu.Lock()
	for id, e := range h.deploys {
		switch {
		case e.info.Read:
		case e.retryAt.After(now):
			if next.IsZero() || e.retryAt.Before(next) {
				next = e.retryAt
			}
		default:
			jobs = append(jobs, job{id, e, e.object})
		}
	}
	h.mu.Unlock()
	for _, j := range jobs {
		if ctx.Err() != nil {
			return time.Time{}
		}
		rctx, cancel := context.WithTimeout(ctx, h.cfg.ReadTimeout)
		m, err := h.readManifest(rctx, j.id, j.object)
		cancel()
		h.mu.Lock()
		if h.deploys[j.id] != j.entry {
			h.mu.Unlock()
			continue // removed meanwhile
		}
		if err != nil {
			j.entry.retryAt = time.Now().Add(h.cfg.RetryAfter << min(j.entry.failures, 6))
			j.entry.failures++
			if next.IsZero() || j.entry.retryAt.Before(next) {
				next = j.entry.retryAt
			}
			h.mu.Unlock()
			if ctx.Err() == nil {
				h.log.Warn("Deploy manifest not readable yet", slog.Any("deploy", j.id), slog.Any("err", err))
			}
			continue
		}
		j.entry.info.Read, j.entry.info.Created, j.entry.info.Files = true, m.Created, len(m.Files)
		for _, f := range m.Files {
			j.entry.info.Bytes += f.Size
		}
		j.entry.object = nil
		h.mu.Unlock()
	}
	return next
}

// readManifest decodes a deploy object (loading it when the event carried none, as on a node
// with lazy bodies) and assembles a chunked manifest from its chunks, each loaded from the table.
func (h *History) readManifest(ctx context.Context, id site.DeployID, object []byte) (*site.Manifest, error) {
	if object == nil {
		var err error
		if object, err = h.cfg.Node.Get(ctx, site.DeployKey(id)); err != nil {
			return nil, fmt.Errorf("web: read deploy %s: %w", id.Short(), err)
		}
	}
	m, ref, err := site.ParseDeployObject(object)
	if err != nil || ref == nil {
		return m, err
	}
	m, _, err = site.AssembleManifest(ref, id, func(hash blobs.Hash) ([]byte, error) {
		obj, err := h.cfg.Node.Get(ctx, site.BlobKey(hash))
		if err != nil {
			return nil, err
		}
		// AssembleManifest checks each chunk's size and hash; the bound is the manifest's.
		_, raw, err := site.DecodeBlob(obj, site.MaxManifestSize)
		return raw, err
	})
	if err != nil {
		return nil, fmt.Errorf("web: deploy %s: %w", id.Short(), err)
	}
	return m, nil
}
