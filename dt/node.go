package dt

import (
	"cmp"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/dt-cdn/dt/dt/internal/hlc"
	"github.com/dt-cdn/dt/dt/internal/ipguard"
	"github.com/dt-cdn/dt/internal/burstlog"
)

// Node is one member of a dt network: it holds a replica of the table, links to peers, relays
// records and messages, and (on a master) writes records.
//
// Lock order: Node.mu before link.mu; eventBus.mu before Subscription.mu; blobPins.mu is taken
// last, under either or neither. Shutdown order: the listeners close first (no new links), then
// the context ends every loop, then the links close and their goroutines are waited for; the
// applier commits what is queued and stops; then the subscriptions stop (they read bodies from
// the store), the blobs kept only for their deliveries are deleted, and the store closes last,
// when nothing can read or write it.
type Node struct {
	cfg       Config
	log       *slog.Logger
	id        NodeID
	identity  ed25519.PrivateKey
	table     [16]byte
	store     *store
	clock     *hlc.Clock
	guard     *ipguard.Guard
	bus       eventBus
	pins      *blobPins
	metrics   *metrics
	seen      *seenCache
	flood     *floodLimits
	dropLogs  dropLogs
	slowLog   *burstlog.Logger // peers disconnected for a full message queue
	linksLog  *burstlog.Logger // links refused over MaxLinksPerAddress
	acceptLog *burstlog.Logger // accept errors, such as running out of descriptors

	eventDropLog *burstlog.Logger // messages and errors dropped for a subscriber behind
	eventsOnce   sync.Once
	eventsOut    chan Event // Events' channel, made on its first call

	ctx         context.Context // ends at Close: every network loop and link
	cancel      context.CancelFunc
	wg          sync.WaitGroup // network loops and links
	stopApplier context.CancelFunc
	applierDone chan struct{} // closed when the applier has stopped, after the links

	grants       *grantTable    // written by the applier after each commit
	pending      pendingRecords // used by the applier only
	pendingCount atomic.Int64   // pending.count, for the metric
	pendingBytes atomic.Int64   // pending.bytes, for the metric
	pendingLog   *burstlog.Logger
	refusedLog   *burstlog.Logger

	verdictMu sync.Mutex
	verdicts  *lru[RecordID, *heldVerdicts] // guarded by verdictMu: peers' verdicts on records this node wrote

	applyCh  chan applyOp
	verifyCh chan verifyJob
	head     atomic.Uint64

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
	closeOnce sync.Once
	closeErr  error
}

// Open starts a node: it loads its state from Config.DataDir, listens on Config.Listen and dials
// Config.Peers. Events go to Config.Events from EventStarted on, and to subscriptions made later
// (Subscribe, Events). Close stops everything Open started.
func Open(cfg Config) (*Node, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	random := cfg.Random
	if random == nil {
		random = rand.Reader
	}
	st, identity, state, err := openState(cfg, random)
	if err != nil {
		return nil, err
	}
	guard, err := ipguard.New(cfg.Guard.ipguardConfig(cfg.Logger, cfg.Registerer, cfg.Now, guardState{db: st.db}))
	if err != nil {
		st.close()
		return nil, fmt.Errorf("dt: address guard: %w", err)
	}
	n := newNode(cfg, identity, st, state, guard)
	err = n.loadGrants()
	if err == nil {
		err = n.listen()
	}
	if err != nil {
		n.cancel()
		guard.Close()
		n.metrics.unregister()
		st.close()
		return nil, err
	}
	n.log.Info("Node started", slog.Int("objects", n.objects), slog.Uint64("head", state.head), slog.Bool("master", cfg.Master))
	n.start()
	return n, nil
}

// openState reads or makes the node's identity and opens its database, empty when the table
// expired (offline longer than the tombstone TTL).
func openState(cfg Config, random io.Reader) (*store, ed25519.PrivateKey, loaded, error) {
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, nil, loaded{}, fmt.Errorf("dt: create data directory: %w", err)
	}
	identity, err := loadOrCreateIdentity(filepath.Join(cfg.DataDir, "node.key"), random)
	if err != nil {
		return nil, nil, loaded{}, err
	}
	newIncarnation := func() uint64 {
		var b [8]byte
		_, _ = io.ReadFull(random, b[:])
		return binary.BigEndian.Uint64(b[:]) | 1 // never zero: zero means "no cursor"
	}
	st, err := openStore(cfg.DataDir, cfg.NoSync, newIncarnation)
	if err != nil {
		return nil, nil, loaded{}, err
	}
	expired, err := st.expireIfStale(cfg.Now(), cfg.TombstoneTTL, newIncarnation())
	if err != nil {
		st.close()
		return nil, nil, loaded{}, err
	}
	if expired {
		cfg.Logger.Warn("Table expired: offline longer than the tombstone TTL; syncing it anew", slog.Duration("ttl", cfg.TombstoneTTL))
	}
	state, err := st.load()
	if err != nil {
		st.close()
		return nil, nil, loaded{}, err
	}
	return st, identity, state, nil
}

// newNode builds the node around its loaded state; nothing runs yet.
func newNode(cfg Config, identity ed25519.PrivateKey, st *store, state loaded, guard *ipguard.Guard) *Node {
	ctx, cancel := context.WithCancel(context.Background())
	n := &Node{
		applierDone: make(chan struct{}),
		cfg:         cfg,
		identity:    identity,
		id:          NodeIDOf(identity.Public().(ed25519.PublicKey)),
		table:       cfg.Keys.Network.TableID(),
		store:       st,
		clock:       hlc.New(cfg.Now, state.clock),
		guard:       guard,
		bus:         eventBus{subs: map[*Subscription]struct{}{}},
		pins:        newBlobPins(),
		seen:        newSeenCache(cfg.MessageWindow, cfg.MaxSeenMessages, cfg.Now()),
		ctx:         ctx,
		cancel:      cancel,
		stopApplier: func() {},
		applyCh:     make(chan applyOp, maxApplyBatch),
		grants:      newGrantTable(),
		verifyCh:    make(chan verifyJob, 1024),
		synced:      make(chan struct{}),
		index:       state.index,
		ids:         make(map[RecordID]string, len(state.index)),
		links:       map[NodeID]*link{},
		linkGone:    make(chan struct{}),
		tailWake:    make(chan struct{}),
		ackWake:     make(chan struct{}),
		verdicts:    newLRU[RecordID, *heldVerdicts](maxHeldVerdicts),
	}
	n.log = cfg.Logger.With(slog.Any("node", n.id))
	n.flood = newFloodLimits(&n.cfg)
	n.dropLogs = newDropLogs(n.log)
	n.slowLog = &burstlog.Logger{Log: n.log, Level: slog.LevelWarn, Msg: "Peer too slow for messages: disconnected"}
	n.linksLog = &burstlog.Logger{Log: n.log, Level: slog.LevelWarn, Msg: "Too many links from one address: refused"}
	n.acceptLog = &burstlog.Logger{Log: n.log, Level: slog.LevelWarn, Msg: "Accept failed"}
	n.pendingLog = &burstlog.Logger{Log: n.log, Level: slog.LevelWarn, Msg: "Records waiting for a grant over MaxPendingRecords or MaxPendingBytes: dropped"}
	n.refusedLog = &burstlog.Logger{Log: n.log, Level: slog.LevelWarn, Msg: "Records outside their signer's grant: refused"}
	n.eventDropLog = &burstlog.Logger{Log: n.log, Level: slog.LevelWarn, Msg: "Subscriber behind: events dropped"}
	n.head.Store(state.head)
	for k, e := range n.index {
		n.ids[e.id] = k
		if e.kind == KindPut {
			n.objects++
		}
	}
	n.metrics = newMetrics(cfg.Registerer, n)
	return n
}

// listen opens Config.Listen; on failure it closes what it opened.
func (n *Node) listen() error {
	for _, addr := range n.cfg.Listen {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			n.closeListeners()
			return fmt.Errorf("dt: listen on %s: %w", addr, err)
		}
		n.listeners = append(n.listeners, l)
	}
	return nil
}

// start runs the applier, the verifiers, the accept and dial loops, and event delivery to
// Config.Events.
func (n *Node) start() {
	applierCtx, stopApplier := context.WithCancel(context.Background())
	n.stopApplier = stopApplier
	go func() { defer close(n.applierDone); n.runApplier(applierCtx) }()
	for range runtime.GOMAXPROCS(0) {
		n.wg.Go(n.runVerifier)
	}
	for _, l := range n.listeners {
		n.wg.Go(func() { n.acceptLoop(l) })
	}
	for _, addr := range n.cfg.Peers {
		n.wg.Go(func() { n.dialLoop(addr) })
	}
	if len(n.cfg.Peers) == 0 {
		n.markSynced()
	}
	// The handlers of Config.Events share one subscription, made before any change can be
	// applied: EventStarted, then an EventObjectAdded for every object held from an earlier run,
	// then every change as it is applied, including those the first sync brings (objects removed
	// while the node was away are reported as removed).
	if len(n.cfg.Events) > 0 {
		handlers := n.cfg.Events
		_, _ = n.subscribe(func(<-chan struct{}) EventHandler {
			return EventHandlerFunc(func(ev Event) {
				for _, h := range handlers {
					h.HandleEvent(ev)
				}
			})
		}, nil) // fails only on a closing node, and this one is not yet returned
	}
}

func (n *Node) markSynced() {
	n.syncedOnce.Do(func() { close(n.synced) })
}

// ID returns the node's id.
func (n *Node) ID() NodeID { return n.id }

// Addrs returns the addresses the node listens on (useful with port 0).
func (n *Node) Addrs() []net.Addr {
	out := make([]net.Addr, len(n.listeners))
	for i, l := range n.listeners {
		out[i] = l.Addr()
	}
	return out
}

// ObservedAddrs returns the addresses this node's linked peers see it at (each peer says so in
// its handshake), the address seen by most peers first. For a node behind NAT that only dials
// out, these are its public addresses, which nothing on the machine knows. They are only as
// honest as the peers, which hold the network key.
func (n *Node) ObservedAddrs() []netip.Addr {
	n.mu.Lock()
	count := map[netip.Addr]int{}
	for _, l := range n.links {
		if ap := l.hello.observed; ap.IsValid() {
			count[ap.Addr()]++
		}
	}
	n.mu.Unlock()
	out := slices.Collect(maps.Keys(count))
	slices.SortFunc(out, func(a, b netip.Addr) int {
		if c := cmp.Compare(count[b], count[a]); c != 0 {
			return c
		}
		return a.Compare(b)
	})
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
		// then stops. Then the subscriptions stop (they read bodies from the store), the blobs
		// kept only for their deliveries go, and the store closes last.
		n.stopApplier()
		<-n.applierDone
		n.bus.closeAll()
		n.sweepOrphans()
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

// emitError reports an error to the application.
func (n *Node) emitError(err error, origin string, object []byte) {
	n.metrics.errors.Inc()
	n.publish(Event{Type: EventError, Err: err, Origin: origin, Object: object})
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

var errDuplicateLink = errors.New("dt: duplicate link to the same node")
