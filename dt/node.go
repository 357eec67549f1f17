package dt

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"

	"golang.org/x/time/rate"

	"github.com/dt-cdn/dt/dt/internal/hlc"
	"github.com/dt-cdn/dt/dt/internal/ipguard"
)

// Node is one member of a dt network: it holds a replica of the table, links to peers, relays
// records and messages, and (on a master) writes records.
//
// Lock order: Node.mu before link.mu. Shutdown order: the listeners close first (no new links),
// then the context ends every loop, then the links close, then the goroutines are waited for, and
// the store closes last, when nothing can write to it.
type Node struct {
	cfg      Config
	log      *slog.Logger
	id       NodeID
	identity ed25519.PrivateKey
	table    [16]byte
	store    *store
	clock    *hlc.Clock
	guard    *ipguard.Guard
	events   *eventQueue
	metrics  *metrics
	seen     *seenCache

	ctx                     context.Context // ends at Close: every network loop and link
	cancel                  context.CancelFunc
	wg                      sync.WaitGroup // network loops and links
	coreWG                  sync.WaitGroup // the applier and the event queue, stopped after the links
	stopApplier, stopEvents context.CancelFunc
	applierDone             chan struct{}

	applyCh  chan applyOp
	verifyCh chan verifyJob
	head     atomic.Uint64
	started  bool // owned by the applier goroutine

	synced     chan struct{} // closed after the first complete sync with a peer
	syncedOnce sync.Once

	listeners []net.Listener

	mu        sync.RWMutex
	index     map[string]*indexEntry // guarded by mu; written only by the applier
	ids       map[RecordID]string    // guarded by mu: the key of every current record, by id
	objects   int                    // guarded by mu: current put records
	links     map[NodeID]*link       // guarded by mu
	linkGone  chan struct{}          // guarded by mu: closed and replaced when a link ends
	tailWake  chan struct{}          // guarded by mu: closed and replaced when the head moves
	ackWake   chan struct{}          // guarded by mu: closed and replaced when a peer acks
	limiters  map[NodeID]*rate.Limiter
	closeOnce sync.Once
	closeErr  error
}

// Open starts a node: it loads its state from Config.DataDir, listens on Config.Listen and dials
// Config.Peers. Read Events until Close; Close stops everything Open started.
func Open(cfg Config) (*Node, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	random := cfg.Random
	if random == nil {
		random = rand.Reader
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("dt: create data directory: %w", err)
	}
	identity, err := loadOrCreateIdentity(filepath.Join(cfg.DataDir, "node.key"), random)
	if err != nil {
		return nil, err
	}
	newIncarnation := func() uint64 {
		var b [8]byte
		_, _ = io.ReadFull(random, b[:])
		return binary.BigEndian.Uint64(b[:]) | 1 // never zero: zero means "no cursor"
	}
	st, err := openStore(cfg.DataDir, cfg.NoSync, newIncarnation)
	if err != nil {
		return nil, err
	}
	expired, err := st.expireIfStale(cfg.Now(), cfg.TombstoneTTL, newIncarnation())
	if err != nil {
		st.close()
		return nil, err
	}
	if expired {
		cfg.Logger.Warn("Table expired: offline longer than the tombstone TTL; syncing it anew", slog.Duration("ttl", cfg.TombstoneTTL))
	}
	state, err := st.load()
	if err != nil {
		st.close()
		return nil, err
	}
	gcfg := cfg.Guard
	if gcfg.Logger == nil {
		gcfg.Logger = cfg.Logger
	}
	gcfg.Store = guardState{db: st.db}
	gcfg.Registerer = cfg.Registerer
	if gcfg.Now == nil {
		gcfg.Now = cfg.Now
	}
	guard, err := ipguard.New(gcfg)
	if err != nil {
		st.close()
		return nil, fmt.Errorf("dt: address guard: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	applierCtx, stopApplier := context.WithCancel(context.Background())
	eventsCtx, stopEvents := context.WithCancel(context.Background())
	n := &Node{
		stopApplier: stopApplier,
		stopEvents:  stopEvents,
		applierDone: make(chan struct{}),
		cfg:         cfg,
		identity:    identity,
		id:          NodeIDOf(identity.Public().(ed25519.PublicKey)),
		table:       cfg.Keys.Network.TableID(),
		store:       st,
		clock:       hlc.New(cfg.Now, state.clock),
		guard:       guard,
		events:      newEventQueue(),
		seen:        newSeenCache(cfg.MessageWindow, cfg.Now()),
		ctx:         ctx,
		cancel:      cancel,
		applyCh:     make(chan applyOp, maxApplyBatch),
		verifyCh:    make(chan verifyJob, 1024),
		synced:      make(chan struct{}),
		index:       state.index,
		ids:         make(map[RecordID]string, len(state.index)),
		links:       map[NodeID]*link{},
		linkGone:    make(chan struct{}),
		tailWake:    make(chan struct{}),
		ackWake:     make(chan struct{}),
		limiters:    map[NodeID]*rate.Limiter{},
	}
	n.log = cfg.Logger.With(slog.Any("node", n.id))
	n.head.Store(state.head)
	for k, e := range n.index {
		n.ids[e.id] = k
		if e.kind == KindPut {
			n.objects++
		}
	}
	n.metrics = newMetrics(cfg.Registerer, n)

	for _, addr := range cfg.Listen {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			n.closeListeners()
			cancel()
			stopApplier()
			stopEvents()
			st.close()
			return nil, fmt.Errorf("dt: listen on %s: %w", addr, err)
		}
		n.listeners = append(n.listeners, l)
	}
	n.log.Info("Node started", slog.Int("objects", n.objects), slog.Uint64("head", state.head), slog.Bool("master", cfg.Master))
	n.coreWG.Go(func() { n.events.run(eventsCtx) })
	n.coreWG.Go(func() { defer close(n.applierDone); n.runApplier(applierCtx) })
	for range runtime.GOMAXPROCS(0) {
		n.wg.Go(n.runVerifier)
	}
	for _, l := range n.listeners {
		n.wg.Go(func() { n.acceptLoop(l) })
	}
	for _, addr := range cfg.Peers {
		n.wg.Go(func() { n.dialLoop(addr) })
	}
	if len(cfg.Peers) == 0 {
		n.markSynced()
	}
	// Event delivery starts at once: EventStarted, then an EventObjectAdded for every object held
	// from an earlier run, then every change as it is applied, including those that the first sync
	// brings (objects removed while the node was away are reported as removed).
	n.applyCh <- applyOp{start: true}
	return n, nil
}

func (n *Node) markSynced() {
	n.syncedOnce.Do(func() { close(n.synced) })
}

// ID returns the node's id.
func (n *Node) ID() NodeID { return n.id }

// Events returns the channel of the node's events, in the order they happened. The same channel is
// returned on every call. It is closed after Close; the application must keep reading it, since
// events wait in memory until read.
func (n *Node) Events() <-chan Event { return n.events.out }

// Addrs returns the addresses the node listens on (useful with port 0).
func (n *Node) Addrs() []net.Addr {
	out := make([]net.Addr, len(n.listeners))
	for i, l := range n.listeners {
		out[i] = l.Addr()
	}
	return out
}

// Close stops the node: it closes its listeners and links, waits for every goroutine it started,
// and closes the database. It is safe to call more than once.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		n.closeListeners()
		n.cancel()
		n.mu.Lock()
		for _, l := range n.links {
			l.close(ErrClosed)
		}
		n.mu.Unlock()
		n.wg.Wait()
		// The links are gone; their final cursors are queued. The applier commits what is queued,
		// then stops, and only then does the event channel close and the store close.
		n.stopApplier()
		<-n.applierDone
		n.stopEvents()
		n.coreWG.Wait()
		n.closeErr = n.store.close()
		n.metrics.unregister()
		n.guard.Close()
		n.log.Info("Node stopped")
	})
	return n.closeErr
}

func (n *Node) closeListeners() {
	for _, l := range n.listeners {
		l.Close()
	}
}

// emitError reports an error to the application and the log.
func (n *Node) emitError(err error, origin string, object []byte) {
	n.metrics.errors.Inc()
	n.events.push(Event{Type: EventError, Err: err, Origin: origin, Object: object})
}

// setIndexLocked replaces a key's current record in memory (new nil: forget the key).
func (n *Node) setIndexLocked(key string, old, new *indexEntry) {
	if old != nil {
		delete(n.ids, old.id)
	}
	if new != nil {
		n.index[key] = new
		n.ids[new.id] = key
	} else {
		delete(n.index, key)
	}
	n.countObjects(old, new)
}

// recordByID returns a current record by id, and its inline body if it has one, for answering a
// peer's wants.
func (n *Node) recordByID(id RecordID) (*Record, []byte, error) {
	n.mu.RLock()
	e := n.index[n.ids[id]]
	n.mu.RUnlock()
	if e == nil || e.id != id {
		return nil, nil, ErrNotFound
	}
	return n.store.recordAt(e.seq)
}

// countObjects keeps the object count in step with a change. Called with mu held.
func (n *Node) countObjects(old, new *indexEntry) {
	if old != nil && old.kind == KindPut {
		n.objects--
	}
	if new != nil && new.kind == KindPut {
		n.objects++
	}
}

// wakeTailers tells every link tailer that the log grew.
func (n *Node) wakeTailers() {
	n.mu.Lock()
	close(n.tailWake)
	n.tailWake = make(chan struct{})
	n.mu.Unlock()
}

func (n *Node) wakeAcks() {
	n.mu.Lock()
	close(n.ackWake)
	n.ackWake = make(chan struct{})
	n.mu.Unlock()
}

// WaitReplicated blocks until at least peers linked peers have applied key's current record on
// this node (a put, or the tombstone of a removal), or ctx ends. A writer uses it to know that a
// change left the machine; it does not wait for the rest of the network.
func (n *Node) WaitReplicated(ctx context.Context, key string, peers int) error {
	for {
		n.mu.RLock()
		e := n.index[key]
		wake := n.ackWake
		holding := 0
		if e != nil {
			for _, l := range n.links {
				if l.acked.Load() >= e.seq {
					holding++
				}
			}
		}
		n.mu.RUnlock()
		if e == nil {
			return fmt.Errorf("dt: %s: %w", key, ErrNotFound)
		}
		if holding >= peers {
			return nil
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return fmt.Errorf("dt: %s reached %d of %d peers: %w", key, holding, peers, ctx.Err())
		case <-n.ctx.Done():
			return ErrClosed
		}
	}
}

// AddObject adds an object (any value encoding/json accepts, or a json.RawMessage) to the table
// and returns its id, the hex SHA-256 of its canonical JSON. It returns once the object is stored
// on this node; it reaches peers as they sync. Only a master may add: elsewhere it returns
// ErrNotMaster and emits an error event, as the original does. A master with peers waits (bounded
// by ctx) until it has learnt the network's state from one of them, so its clock is ahead of every
// record already written.
func (n *Node) AddObject(ctx context.Context, object any) (string, error) {
	body, err := CanonicalJSON(object)
	if err != nil {
		n.emitError(err, "add_object", nil)
		return "", err
	}
	id := ObjectID(body)
	if err := n.Put(ctx, id, body); err != nil {
		return "", err
	}
	return id, nil
}

// RemoveObject removes the object with the given id. Only a master may remove.
func (n *Node) RemoveObject(ctx context.Context, id string) error {
	return n.Delete(ctx, id)
}

// Put writes body under key: the lower-level write under AddObject, for tables keyed by name.
func (n *Node) Put(ctx context.Context, key string, body []byte) error {
	if int64(len(body)) > n.cfg.MaxObjectSize {
		err := fmt.Errorf("dt: object of %d bytes: %w (limit %d)", len(body), ErrTooLarge, n.cfg.MaxObjectSize)
		n.emitError(err, "add_object", nil)
		return err
	}
	rec := &Record{Kind: KindPut, Key: key, Hash: sha256.Sum256(body), Size: uint64(len(body))}
	return n.write(ctx, rec, body, "add_object")
}

// Delete writes a tombstone for key. Deleting a key the table does not hold is not an error (the
// tombstone still wins over a put of it that may be in flight).
func (n *Node) Delete(ctx context.Context, key string) error {
	return n.write(ctx, &Record{Kind: KindDelete, Key: key}, nil, "remove_object")
}

func (n *Node) write(ctx context.Context, rec *Record, body []byte, origin string) error {
	return n.writeBatch(ctx, []*Record{rec}, [][]byte{body}, origin)
}

// writeBatch signs and commits records (with their bodies, nil for deletes). Records queued
// together commit together, in as few transactions as the applier's batch allows.
func (n *Node) writeBatch(ctx context.Context, recs []*Record, bodies [][]byte, origin string) error {
	if !n.cfg.Master {
		err := fmt.Errorf("%w (%s %s)", ErrNotMaster, origin, recs[0].Key)
		n.emitError(err, origin, bodies[0])
		return err
	}
	for i, rec := range recs {
		if len(rec.Key) == 0 || len(rec.Key) > MaxKeySize {
			err := fmt.Errorf("%w: key of %d bytes", ErrMalformed, len(rec.Key))
			n.emitError(err, origin, bodies[i])
			return err
		}
	}
	select {
	case <-n.synced:
	case <-ctx.Done():
		return fmt.Errorf("%w: %w", ErrNotReady, ctx.Err())
	case <-n.ctx.Done():
		return ErrClosed
	}
	done := make(chan applyResult, len(recs))
	for i, rec := range recs {
		rec.Table, rec.Epoch, rec.Writer = n.table, n.cfg.Epoch, n.id
		rec.Clock = n.clock.Now()
		rec.sign(n.cfg.Keys.Master)
		op := applyOp{rec: rec, id: rec.ID(), done: done}
		if rec.Kind == KindPut {
			if len(bodies[i]) <= n.cfg.InlineBodyMax {
				op.body = bodies[i]
			} else if err := n.store.blobs.PutBytes(rec.Hash, bodies[i]); err != nil {
				err = fmt.Errorf("dt: store object body: %w", err)
				n.emitError(err, origin, bodies[i])
				return err
			}
		}
		if err := n.submit(ctx, op); err != nil {
			return err
		}
	}
	var first error
	for range recs {
		select {
		case res := <-done:
			if res.err != nil && first == nil {
				first = res.err
				n.emitError(res.err, origin, nil)
			}
		case <-n.ctx.Done():
			return ErrClosed
		}
	}
	return first
}

// PutMany writes several keyed bodies at once, committed in as few transactions as possible.
func (n *Node) PutMany(ctx context.Context, keys []string, bodies [][]byte) error {
	if len(keys) != len(bodies) {
		return fmt.Errorf("dt: PutMany: %d keys, %d bodies", len(keys), len(bodies))
	}
	if len(keys) == 0 {
		return nil
	}
	recs := make([]*Record, len(keys))
	for i, key := range keys {
		if int64(len(bodies[i])) > n.cfg.MaxObjectSize {
			err := fmt.Errorf("dt: object of %d bytes: %w (limit %d)", len(bodies[i]), ErrTooLarge, n.cfg.MaxObjectSize)
			n.emitError(err, "add_object", nil)
			return err
		}
		recs[i] = &Record{Kind: KindPut, Key: key, Hash: sha256.Sum256(bodies[i]), Size: uint64(len(bodies[i]))}
	}
	return n.writeBatch(ctx, recs, bodies, "add_object")
}

// DeleteMany writes tombstones for several keys at once.
func (n *Node) DeleteMany(ctx context.Context, keys []string) error {
	if len(keys) == 0 {
		return nil
	}
	recs := make([]*Record, len(keys))
	for i, key := range keys {
		recs[i] = &Record{Kind: KindDelete, Key: key}
	}
	return n.writeBatch(ctx, recs, make([][]byte, len(keys)), "remove_object")
}

// Load returns the body under key like Get, but a node with LazyBodies that does not hold the body
// fetches it from a linked peer first (verified by hash, then kept).
func (n *Node) Load(ctx context.Context, key string) ([]byte, error) {
	body, err := n.Get(key)
	if err == nil || !n.cfg.LazyBodies || !errors.Is(err, ErrNotFound) {
		return body, err
	}
	n.mu.RLock()
	e := n.index[key]
	links := make([]*link, 0, len(n.links))
	for _, l := range n.links {
		links = append(links, l)
	}
	n.mu.RUnlock()
	if e == nil || e.kind != KindPut {
		return nil, err
	}
	rec, _, rerr := n.store.recordAt(e.seq)
	if rerr != nil {
		return nil, rerr
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

// AddObjects adds several objects at once and returns their ids in order: the bulk form of
// AddObject, committed in as few transactions as possible.
func (n *Node) AddObjects(ctx context.Context, objects []any) ([]string, error) {
	if len(objects) == 0 {
		return nil, nil
	}
	recs := make([]*Record, len(objects))
	bodies := make([][]byte, len(objects))
	ids := make([]string, len(objects))
	for i, object := range objects {
		body, err := CanonicalJSON(object)
		if err != nil {
			n.emitError(err, "add_object", nil)
			return nil, err
		}
		if int64(len(body)) > n.cfg.MaxObjectSize {
			err := fmt.Errorf("dt: object of %d bytes: %w (limit %d)", len(body), ErrTooLarge, n.cfg.MaxObjectSize)
			n.emitError(err, "add_object", nil)
			return nil, err
		}
		ids[i] = ObjectID(body)
		bodies[i] = body
		recs[i] = &Record{Kind: KindPut, Key: ids[i], Hash: sha256.Sum256(body), Size: uint64(len(body))}
	}
	if err := n.writeBatch(ctx, recs, bodies, "add_object"); err != nil {
		return nil, err
	}
	return ids, nil
}

// Get returns the body stored under key (an object's canonical JSON), or ErrNotFound.
func (n *Node) Get(key string) ([]byte, error) {
	n.mu.RLock()
	e := n.index[key]
	n.mu.RUnlock()
	if e == nil || e.kind != KindPut {
		return nil, fmt.Errorf("dt: %s: %w", key, ErrNotFound)
	}
	return n.store.bodyOf(e.seq)
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

// Keys returns the keys of every object in the table, in no particular order.
func (n *Node) Keys() []string {
	n.mu.RLock()
	defer n.mu.RUnlock()
	out := make([]string, 0, n.objects)
	for k, e := range n.index {
		if e.kind == KindPut {
			out = append(out, k)
		}
	}
	return out
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

var errDuplicateLink = errors.New("dt: duplicate link to the same node")
