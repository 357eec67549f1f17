package dt

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"slices"
)

// Reading the table and the node's state.

// WaitReplicated blocks until at least peers linked peers have applied key's current record on
// this node (a put, or the tombstone of a removal), or ctx ends. A writer uses it to know that a
// change left the machine; it does not wait for the rest of the network.
//
// A peer that refused the record says so (see verdict.go): WaitReplicated then returns at once a
// *VerdictError wrapping ErrRefused, with the peer's reason; so it does when a peer refused an
// earlier record this node wrote that is still its key's current record, since the wait would
// otherwise confirm it along with the log before key. A peer that keeps the record waiting
// for its signer's grant does not count as holding it; when ctx ends while one does, the error
// is a *VerdictError wrapping ErrPending (and ctx's error is not wrapped). Peers of releases
// without verdicts acknowledge a record they refused like any other.
func (n *Node) WaitReplicated(ctx context.Context, key string, peers int) error {
	for {
		n.mu.RLock()
		e := n.index[key]
		wake := n.ackWake
		n.mu.RUnlock()
		if e == nil {
			return fmt.Errorf("dt: %s: %w", key, ErrNotFound)
		}
		refused, pending := n.verdictsOn(e.id)
		if refused != nil {
			refused.Key = key
			return refused
		}
		if refused := n.refusedUpTo(e.seq); refused != nil {
			return refused
		}
		holding := n.holding(e.seq, pending)
		if holding >= peers {
			return nil
		}
		select {
		case <-wake:
		case <-ctx.Done():
			if len(pending) > 0 {
				p := pending[0]
				return &VerdictError{Key: key, Peer: p.peer, Verdict: p.verdict, Reason: p.reason}
			}
			return fmt.Errorf("dt: %s reached %d of %d peers: %w", key, holding, peers, ctx.Err())
		case <-n.ctx.Done():
			return ErrClosed
		}
	}
}

// holding counts the linked peers that acknowledged the log up to seq, less those that keep the
// record waiting for a grant.
func (n *Node) holding(seq uint64, pending []peerVerdict) int {
	n.mu.RLock()
	defer n.mu.RUnlock()
	holding := 0
	for _, l := range n.links {
		if l.acked.Load() >= seq && !slices.ContainsFunc(pending, func(p peerVerdict) bool { return p.peer == l.peer }) {
			holding++
		}
	}
	return holding
}

// Get returns the body stored under key (an object's canonical JSON), or an error wrapping
// ErrNotFound when the table holds no object under it. A node with LazyBodies that holds the
// record but not its body fetches the body from a linked peer first (verified by hash, then
// kept); ctx bounds that fetch, and is not consulted otherwise.
func (n *Node) Get(ctx context.Context, key string) ([]byte, error) {
	body, err := n.held(key)
	if err == nil || !n.cfg.LazyBodies || !errors.Is(err, ErrNotFound) {
		return body, err
	}
	return n.fetch(ctx, key, err)
}

// held returns the body under key if this node holds it.
func (n *Node) held(key string) ([]byte, error) {
	n.mu.RLock()
	e := n.index[key]
	n.mu.RUnlock()
	if e == nil || e.kind != KindPut {
		return nil, fmt.Errorf("dt: %s: %w", key, ErrNotFound)
	}
	return n.store.bodyOf(e.seq)
}

// fetch fetches the body of key's current put from the linked peers in turn, for a lazy node;
// missing is the error of the local read.
func (n *Node) fetch(ctx context.Context, key string, missing error) ([]byte, error) {
	n.mu.RLock()
	e := n.index[key]
	links := make([]*link, 0, len(n.links))
	for _, l := range n.links {
		links = append(links, l)
	}
	n.mu.RUnlock()
	if e == nil || e.kind != KindPut {
		return nil, missing
	}
	rec, _, err := n.store.recordAt(e.seq)
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, l := range links {
		if ctx.Err() != nil {
			break
		}
		if ferr := l.fetchBody(rec); ferr != nil {
			errs = append(errs, ferr)
			continue
		}
		return n.store.blobBody(rec.Hash)
	}
	return nil, fmt.Errorf("dt: load %s: no peer had it: %w", key, errors.Join(append(errs, ErrNotFound)...))
}

// Version returns the hybrid logical clock of the current record under key (a put; false for a
// missing or deleted key). Versions grow with every write and compare across keys in the order the
// writes happened, so they order, say, deploys by when they were published.
func (n *Node) Version(key string) (uint64, bool) {
	n.mu.RLock()
	defer n.mu.RUnlock()
	e := n.index[key]
	if e == nil || e.kind != KindPut {
		return 0, false
	}
	return uint64(e.clock), true
}

// ObjectKeys returns the key of every object in the table, in no particular order. The keys are
// those held when it is called, so the caller may change the table while it ranges over them.
func (n *Node) ObjectKeys() iter.Seq[string] {
	n.mu.RLock()
	keys := make([]string, 0, n.objects)
	for k, e := range n.index {
		if e.kind == KindPut {
			keys = append(keys, k)
		}
	}
	n.mu.RUnlock()
	return slices.Values(keys)
}

// Has reports whether the table holds an object under key.
func (n *Node) Has(key string) bool {
	n.mu.RLock()
	defer n.mu.RUnlock()
	e := n.index[key]
	return e != nil && e.kind == KindPut
}

// WaitSynced blocks until the node has completed a sync with a peer (at once for a node without
// peers), or ctx ends.
func (n *Node) WaitSynced(ctx context.Context) error {
	select {
	case <-n.synced:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%w: %w", ErrNotReady, ctx.Err())
	}
}

// Status is a snapshot of a node's state, for status pages.
type Status struct {
	NodeID  NodeID       `json:"node_id"`
	Master  bool         `json:"master"`
	Objects int          `json:"objects"`
	Records int          `json:"records"`
	Head    uint64       `json:"head"`
	Peers   int          `json:"peers"`
	Links   []LinkStatus `json:"links"`
	Listen  []string     `json:"listen"`
	Synced  bool         `json:"synced"`
	Blocked []string     `json:"blocked"`
}

// LinkStatus describes one link.
type LinkStatus struct {
	Peer     NodeID `json:"peer"`
	Remote   string `json:"remote"`
	Dialed   bool   `json:"dialed"`
	Master   bool   `json:"master"`
	CaughtUp bool   `json:"caught_up"`
	Cursor   uint64 `json:"cursor"`
}

// Status returns the node's current state.
func (n *Node) Status() Status {
	s := Status{NodeID: n.id, Master: n.cfg.Master, Head: n.head.Load(), Listen: []string{}, Links: []LinkStatus{}, Blocked: []string{}}
	select {
	case <-n.synced:
		s.Synced = true
	default:
	}
	for _, a := range n.Addrs() {
		s.Listen = append(s.Listen, a.String())
	}
	n.mu.RLock()
	s.Objects, s.Records = n.objects, len(n.index)
	for _, l := range n.links {
		s.Links = append(s.Links, l.status())
	}
	n.mu.RUnlock()
	s.Peers = len(s.Links)
	for _, b := range n.guard.Blocks() {
		s.Blocked = append(s.Blocked, b.Prefix.String())
	}
	return s
}
