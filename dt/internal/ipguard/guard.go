package ipguard

import (
	"github.com/prometheus/client_golang/prometheus"

	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/dt-cdn/dt/internal/burstlog"
)

const (
	// sweepBatch bounds the idle keys one call forgets, so no single Admit pays for a large
	// sweep; each Admit adds at most one key, so forgetting up to sweepBatch keeps pace.
	sweepBatch = 16
	// pruneInterval is how often block history past BlockMemory is dropped.
	pruneInterval = time.Minute
)

// Guard decides which connections may attempt a handshake and blocks abusive addresses (see the
// package documentation). It is safe for concurrent use. Create it with [New].
//
// Locks: saveMu is never taken while mu is held. Store.Save runs under saveMu alone, so a slow
// store delays other saves, never the decisions of other connections.
type Guard struct {
	cfg   Config
	log   *slog.Logger
	m     *metrics
	never []netip.Prefix

	mu        sync.Mutex
	keys      map[netip.Prefix]*keyState // guarded by mu
	recency   keyList                    // guarded by mu; the states of keys, most recent first
	blocks    blockTable                 // guarded by mu
	inflight  int                        // guarded by mu; tickets of tracked keys not yet ended
	subnets   map[netip.Prefix]int       // guarded by mu; tickets in flight by /24 or /48, not known peers
	known     map[netip.Prefix]time.Time // guarded by mu; known peers' keys, until when
	fullLog   *burstlog.Logger           // refusals for lack of a slot, once per burst
	failLog   *burstlog.Logger           // failed handshakes, once per burst
	spareLog  *burstlog.Logger           // blocks not imposed on loopback, once per burst
	lastPrune time.Time                  // guarded by mu
	version   uint64                     // guarded by mu; counts changes of blocks

	saveMu sync.Mutex
	saved  uint64 // guarded by saveMu; the version last saved

	collectors []prometheus.Collector // registered on cfg.Registerer; unregistered by Close
}

// change is what a decision under mu asks to be done after mu is released: blocks to log and
// count, and a state to save.
type change struct {
	blocks  []Block
	state   []byte // nil: nothing to save
	version uint64
}

// New returns a guard for cfg, with the blocks stored in cfg.Store. It fails if cfg is invalid
// (every invalid field is reported, joined), if the Store cannot be read, or if the metrics
// cannot be registered. A stored state that cannot be decoded does not fail New: it is logged
// at Error and counted, and the guard starts with no blocks; the next block overwrites it.
func New(cfg Config) (*Guard, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	g := &Guard{
		cfg:     cfg,
		log:     cfg.Logger,
		m:       newMetrics(),
		never:   cfg.NeverBlock,
		keys:    make(map[netip.Prefix]*keyState),
		blocks:  newBlockTable(),
		subnets: make(map[netip.Prefix]int),
		known:   make(map[netip.Prefix]time.Time),
		fullLog: &burstlog.Logger{Log: cfg.Logger, Level: slog.LevelWarn, Msg: "handshake slots full: connections refused"},
		failLog: &burstlog.Logger{Log: cfg.Logger, Level: slog.LevelInfo, Msg: "handshakes failed"},
		spareLog: &burstlog.Logger{Log: cfg.Logger, Level: slog.LevelWarn,
			Msg: "loopback address not blocked (loopback is never blocked unless configured to be)"},
	}
	if err := g.load(); err != nil {
		return nil, err
	}
	g.collectors = g.m.collectors(g)
	if err := register(cfg.Registerer, g.collectors); err != nil {
		return nil, fmt.Errorf("ipguard: register metrics: %w", err)
	}
	return g, nil
}

// load reads the stored blocks. Entries whose count is no longer remembered are dropped, as are
// entries lying wholly inside a never-block prefix; ended blocks still remembered are kept as
// history for escalation but are not in force.
func (g *Guard) load() error {
	if g.cfg.Store == nil {
		return nil
	}
	data, err := g.cfg.Store.Load()
	if err != nil {
		g.m.stateError.WithLabelValues("load").Inc()
		return fmt.Errorf("ipguard: load state: %w", err)
	}
	if len(data) == 0 {
		return nil
	}
	blocks, err := decodeState(data)
	if err != nil {
		g.m.stateError.WithLabelValues("decode").Inc()
		g.log.LogAttrs(context.Background(), slog.LevelError, "stored blocks are unreadable; starting with none",
			slog.Int("bytes", len(data)), slog.Any("error", err))
		return nil
	}
	now := g.cfg.Now()
	for _, b := range blocks {
		if !now.Before(b.Until.Add(g.cfg.BlockMemory)) || g.neverBlockPrefix(b.Prefix) ||
			(!g.cfg.BlockLoopback && loopbackPrefix(b.Prefix)) {
			continue
		}
		b.Since = b.Until.Add(-g.cfg.blockDuration(b.Count))
		g.blocks.put(&b)
	}
	g.log.LogAttrs(context.Background(), slog.LevelInfo, "stored blocks loaded",
		slog.Int("active", g.blocks.countActive(now)), slog.Int("remembered", len(g.blocks.entries)))
	return nil
}

// Admit decides whether a connection just accepted from remote may attempt a handshake. Call it
// before any cryptography. On success the caller must end the returned ticket with exactly one
// of [Ticket.Succeeded], [Ticket.Failed] or [Ticket.Abandoned]; until then it holds one of the
// MaxHandshakes slots. The caller should also bound the handshake by [Ticket.Deadline].
//
// A refusal wraps [ErrBlocked], [ErrRateLimited], [ErrBusy] or [ErrInvalidAddress]; the caller
// closes the connection without reading from it. Every attempt except one from a blocked key
// counts toward the key's unauthenticated connections, refused ones included, so a key that
// keeps hammering after being rate limited ends up blocked. Admit may save the block list
// through the Store when it creates a block.
func (g *Guard) Admit(remote netip.Addr) (*Ticket, error) {
	if !remote.IsValid() {
		g.m.refused.WithLabelValues(refusedInvalid).Inc()
		return nil, fmt.Errorf("ipguard: admit: %w", ErrInvalidAddress)
	}
	addr := remote.WithZone("").Unmap()
	key := KeyOf(addr)
	now := g.cfg.Now()
	if g.neverBlock(addr) {
		g.m.admitted.Inc()
		g.debug("connection admitted", addr, key, slog.Bool("never_block", true))
		return &Ticket{g: g, addr: addr, key: key, deadline: now.Add(g.cfg.HandshakeTimeout)}, nil
	}

	spared := g.spared(addr)
	g.mu.Lock()
	g.maintainLocked(now)
	if until, blocked := g.blocks.covering(key, now); blocked && !spared {
		g.mu.Unlock()
		g.refused(refusedBlocked, addr, key)
		return nil, fmt.Errorf("ipguard: admit %v: %w until %v", addr, ErrBlocked, until.Format(time.RFC3339))
	}
	st := g.touchLocked(key, now)
	cc := g.countConnLocked(st, spared, now)
	if cc.block {
		ch := g.blockLocked(key, BlockReasonConnections, now)
		g.mu.Unlock()
		g.refused(refusedBlocked, addr, key)
		_ = g.apply(ch) // a failed save is logged and counted; the block holds in memory
		return nil, fmt.Errorf("ipguard: admit %v: %w: %d unauthenticated connections", addr, ErrBlocked, int(cc.n))
	}
	sl := g.takeSlotLocked(st, key, addr, now)
	window := st.conns.window
	g.mu.Unlock()

	g.reportConns(cc, addr, key)
	if sl.refusal != nil {
		return nil, g.refuseSlot(sl, addr, key)
	}
	g.m.admitted.Inc()
	if sl.known {
		g.m.admittedKnown.Inc()
	}
	if sl.pressure {
		g.m.shortDeadlines.Inc()
	}
	g.debug("connection admitted", addr, key, slog.Bool("known", sl.known), slog.Duration("timeout", sl.timeout))
	t := &Ticket{g: g, state: st, addr: addr, key: key, window: window, deadline: now.Add(sl.timeout)}
	if !sl.known {
		t.subnet = sl.subnet
	}
	return t, nil
}

// connCount is what one more unauthenticated connection did to its key's count.
type connCount struct {
	n     float64 // connections within ConnWindow, this one included
	block bool    // over BlockConnections: the key is to be blocked
	spare bool    // over BlockConnections, but the address is spared: counted afresh instead
	warn  bool    // at WarnConnections and not warned of within ConnWindow
}

// countConnLocked counts one more connection from st's key and says what it calls for.
func (g *Guard) countConnLocked(st *keyState, spared bool, now time.Time) connCount {
	c := connCount{n: st.conns.add(now, g.cfg.ConnWindow)}
	if c.n > float64(g.cfg.BlockConnections) {
		if !spared {
			c.block = true
			return c
		}
		c.spare = true
		st.conns = connCounter{} // as a block would: the next burst is counted afresh
	}
	c.warn = c.n >= float64(g.cfg.WarnConnections) &&
		(st.warnedAt.IsZero() || now.Sub(st.warnedAt) >= g.cfg.ConnWindow)
	if c.warn {
		st.warnedAt = now
	}
	return c
}

// reportConns logs and counts what countConnLocked found, outside the lock.
func (g *Guard) reportConns(c connCount, addr netip.Addr, key netip.Prefix) {
	if c.spare {
		g.spare(addr, key, BlockReasonConnections)
	}
	if c.warn {
		g.m.warnings.Inc()
		g.log.LogAttrs(context.Background(), slog.LevelWarn, "many unauthenticated connections",
			slog.String("key", key.String()), slog.Int("connections", int(c.n)),
			slog.Duration("window", g.cfg.ConnWindow), slog.Int("block_at", g.cfg.BlockConnections+1))
	}
}

// slotGrant is the answer to a connection's request for a handshake slot.
type slotGrant struct {
	refusal  error  // ErrBusy or ErrRateLimited; nil when a slot was taken
	reason   string // the refusal's metric label
	known    bool   // a known peer: may use the reserve, not counted per subnet
	pressure bool   // more than half the slots taken: the short deadline applies
	timeout  time.Duration
	subnet   netip.Prefix
	// In flight when the slot was asked for, for the log line of a refusal.
	inflight, inSubnet int
}

// takeSlotLocked takes a handshake slot for a connection from addr, or says why not. The caps
// are checked before the token bucket so that a refusal for load does not also spend one of the
// key's tokens. Known peers may take the reserved slots and are not counted per subnet.
func (g *Guard) takeSlotLocked(st *keyState, key netip.Prefix, addr netip.Addr, now time.Time) slotGrant {
	sl := slotGrant{known: g.knownLocked(key, now), subnet: SubnetOf(addr)}
	switch {
	case g.inflight >= g.cfg.MaxHandshakes:
		sl.refusal, sl.reason = ErrBusy, refusedBusy
	case !sl.known && g.inflight >= g.cfg.MaxHandshakes-g.cfg.ReservedHandshakes:
		sl.refusal, sl.reason = ErrBusy, refusedBusy
	case !sl.known && g.subnets[sl.subnet] >= g.cfg.MaxHandshakesPerSubnet:
		sl.refusal, sl.reason = ErrBusy, refusedSubnet
	case !st.limiter.AllowN(now, 1):
		sl.refusal, sl.reason = ErrRateLimited, refusedRate
	default:
		g.inflight++
		st.inflight++
		if !sl.known {
			g.subnets[sl.subnet]++
		}
	}
	// Under pressure a connection gets the short deadline: slots held by connections that send
	// nothing then turn over quickly. Known peers keep the full one, so a peer on a slow path
	// or a loaded machine is not cut off by a flood from elsewhere.
	sl.timeout = g.cfg.HandshakeTimeout
	sl.pressure = !sl.known && g.inflight > g.cfg.MaxHandshakes/2
	if sl.pressure {
		sl.timeout = min(sl.timeout, g.cfg.PressureHandshakeTimeout)
	}
	sl.inflight, sl.inSubnet = g.inflight, g.subnets[sl.subnet]
	return sl
}

// refuseSlot counts and logs a refused slot and returns the error Admit gives for it.
func (g *Guard) refuseSlot(sl slotGrant, addr netip.Addr, key netip.Prefix) error {
	g.refused(sl.reason, addr, key)
	if sl.refusal == ErrRateLimited {
		return fmt.Errorf("ipguard: admit %v: %w", addr, ErrRateLimited)
	}
	g.fullLog.Hit(context.Background(), slog.String("reason", sl.reason), slog.String("addr", addr.String()),
		slog.String("subnet", sl.subnet.String()), slog.Int("in_flight", sl.inflight), slog.Int("in_subnet", sl.inSubnet),
		slog.Int("max", g.cfg.MaxHandshakes), slog.Int("max_per_subnet", g.cfg.MaxHandshakesPerSubnet))
	return fmt.Errorf("ipguard: admit %v: %w (%s)", addr, ErrBusy, sl.reason)
}

// AddKnown marks addr as a known peer for KnownPeerTTL: its connections may take the reserved
// handshake slots and are not counted per subnet. A node calls it for the peers it dials, whose
// connections back to it must not wait behind a flood; a successful handshake marks its address
// known as well. It changes nothing for blocks or rate limits.
func (g *Guard) AddKnown(addr netip.Addr) {
	key := KeyOf(addr)
	if !key.IsValid() {
		return
	}
	now := g.cfg.Now()
	g.mu.Lock()
	g.addKnownLocked(key, now)
	g.mu.Unlock()
}

// knownLocked reports whether key is a known peer at now, forgetting it if it expired.
func (g *Guard) knownLocked(key netip.Prefix, now time.Time) bool {
	until, ok := g.known[key]
	if ok && !now.Before(until) {
		delete(g.known, key)
		return false
	}
	return ok
}

// addKnownLocked marks key known until now+KnownPeerTTL. When MaxKnownPeers are known, the one
// that expires first goes; the scan is linear, but it runs only on a successful handshake of a
// new address with the table full.
func (g *Guard) addKnownLocked(key netip.Prefix, now time.Time) {
	if _, ok := g.known[key]; !ok && len(g.known) >= g.cfg.MaxKnownPeers {
		var oldest netip.Prefix
		var oldestUntil time.Time
		for k, until := range g.known {
			if oldestUntil.IsZero() || until.Before(oldestUntil) {
				oldest, oldestUntil = k, until
			}
		}
		delete(g.known, oldest)
	}
	g.known[key] = now.Add(g.cfg.KnownPeerTTL)
}

// Blocked reports whether connections from addr are refused as blocked, and until when. It is
// false for addresses in the never-block list, for loopback unless Config.BlockLoopback, and
// for the zero Addr.
func (g *Guard) Blocked(addr netip.Addr) (until time.Time, blocked bool) {
	if !addr.IsValid() {
		return time.Time{}, false
	}
	addr = addr.WithZone("").Unmap()
	if g.neverBlock(addr) || g.spared(addr) {
		return time.Time{}, false
	}
	now := g.cfg.Now()
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.blocks.covering(KeyOf(addr), now)
}

// Blocks returns the blocks in force, sorted by prefix, for status pages. Blocks that ended but
// are still remembered for escalation are not included.
func (g *Guard) Blocks() []Block {
	now := g.cfg.Now()
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.blocks.list(now)
}

// Unblock lifts, as an operator action, every block lying within p and forgets their history, so
// a later block starts at the first duration again; the failures and connection counts of the
// keys within p are cleared too. A prefix longer than a key (such as a single address) means its
// key. Unblocking a /64 does not lift a block of its /48: pass the /48 (or a shorter prefix) for
// that. It returns the blocks lifted, sorted by prefix; an error wrapping [ErrNotBlocked] when
// no block in force lay within p, and the Store's error if the new list could not be saved (the
// blocks are lifted regardless).
func (g *Guard) Unblock(p netip.Prefix) ([]Block, error) {
	if !p.IsValid() {
		return nil, fmt.Errorf("ipguard: unblock: %w", ErrInvalidAddress)
	}
	p = unmapPrefix(p)
	if p.Bits() > KeyOf(p.Addr()).Bits() {
		p = KeyOf(p.Addr())
	}
	within := func(q netip.Prefix) bool { return q.Bits() >= p.Bits() && p.Contains(q.Addr()) }
	return g.unblock(within, p.String())
}

// UnblockAll lifts every block, as [Guard.Unblock] does for each: it returns the blocks lifted,
// an error wrapping [ErrNotBlocked] when there were none, and the Store's error if the empty list
// could not be saved.
func (g *Guard) UnblockAll() ([]Block, error) {
	return g.unblock(func(netip.Prefix) bool { return true }, "all")
}

// unblock lifts the blocks of the prefixes within says are within what is lifted, named what.
func (g *Guard) unblock(within func(netip.Prefix) bool, what string) ([]Block, error) {
	now := g.cfg.Now()
	var lifted []Block
	var ch change
	g.mu.Lock()
	removed := false
	for q, b := range g.blocks.entries {
		if within(q) {
			if b.Until.After(now) {
				lifted = append(lifted, *b)
			}
			g.blocks.remove(q)
			removed = true
		}
	}
	for k, st := range g.keys {
		if within(k) {
			st.failures, st.conns, st.warnedAt = st.failures[:0], connCounter{}, time.Time{}
		}
	}
	if removed {
		ch = g.snapshotLocked(now)
	}
	g.mu.Unlock()

	sortBlocks(lifted)
	for _, b := range lifted {
		g.m.unblocks.Inc()
		g.log.LogAttrs(context.Background(), slog.LevelInfo, "block lifted by operator",
			slog.String("prefix", b.Prefix.String()), slog.String("reason", b.Reason), slog.Time("until", b.Until))
	}
	if err := g.apply(ch); err != nil {
		return lifted, err
	}
	if len(lifted) == 0 {
		return nil, fmt.Errorf("ipguard: unblock %s: %w", what, ErrNotBlocked)
	}
	return lifted, nil
}

// finish ends a ticket: it releases the handshake slot and records the outcome.
func (g *Guard) finish(t *Ticket, o outcome, reason string) {
	now := g.cfg.Now()
	g.countOutcome(o, reason)
	if t.state == nil { // a never-block address: nothing is tracked
		g.logOutcome(t, o, reason)
		return
	}
	var ch change
	spare := false
	g.mu.Lock()
	st := t.state // never forgotten while st.inflight > 0, so still g.keys[t.key]
	g.inflight--
	st.inflight--
	if t.subnet.IsValid() {
		if g.subnets[t.subnet]--; g.subnets[t.subnet] <= 0 {
			delete(g.subnets, t.subnet)
		}
	}
	st.lastSeen = now
	g.recency.moveToFront(st)
	switch o {
	case outcomeSucceeded:
		st.failures = st.failures[:0]
		st.conns.remove(t.window)
		g.addKnownLocked(t.key, now)
	case outcomeFailed:
		if g.recordFailureLocked(st, now) {
			if g.spared(t.addr) {
				spare = true
			} else {
				ch = g.blockLocked(t.key, BlockReasonFailures, now)
			}
		}
	}
	g.mu.Unlock()
	g.logOutcome(t, o, reason)
	if spare {
		g.spare(t.addr, t.key, BlockReasonFailures)
	}
	_ = g.apply(ch) // a failed save is logged and counted; the block holds in memory
}

// recordFailureLocked adds a failure at now to st and reports whether the key must be blocked:
// FailureThreshold failures within FailureWindow, and the key not blocked already (a handshake
// admitted before its key was blocked may end after).
func (g *Guard) recordFailureLocked(st *keyState, now time.Time) bool {
	return g.recordLocked(&st.failures, st.key, now)
}

// recordLocked appends now to a window of failure times (failures or strikes) and reports whether
// it now holds FailureThreshold of them within FailureWindow, the key not being blocked yet.
func (g *Guard) recordLocked(times *[]time.Time, key netip.Prefix, now time.Time) bool {
	if len(*times) == g.cfg.FailureThreshold {
		copy(*times, (*times)[1:])
		*times = (*times)[:len(*times)-1]
	}
	if *times == nil {
		*times = make([]time.Time, 0, g.cfg.FailureThreshold)
	}
	*times = append(*times, now)
	if len(*times) < g.cfg.FailureThreshold || now.Sub((*times)[0]) >= g.cfg.FailureWindow {
		return false
	}
	*times = (*times)[:0]
	_, blocked := g.blocks.active(key, now)
	return !blocked
}

// blockLocked blocks key for reason, blocks its /48 as well when that makes SubnetThreshold of
// its /64s blocked, clears the key's counts and returns what to log and save.
func (g *Guard) blockLocked(key netip.Prefix, reason string, now time.Time) change {
	blocks := []Block{g.blocks.block(key, reason, now, &g.cfg)}
	if st := g.keys[key]; st != nil {
		st.failures, st.conns = st.failures[:0], connCounter{}
	}
	if sub, ok := subnetOf(key); ok {
		_, blocked := g.blocks.active(sub, now)
		if !blocked && g.blocks.activeIn(sub, now) >= g.cfg.SubnetThreshold {
			blocks = append(blocks, g.blocks.block(sub, BlockReasonSubnet, now, &g.cfg))
		}
	}
	ch := g.snapshotLocked(now)
	ch.blocks = blocks
	return ch
}

// snapshotLocked records a change of the block list and, with a Store, encodes the state to save.
func (g *Guard) snapshotLocked(now time.Time) change {
	g.version++
	ch := change{version: g.version}
	if g.cfg.Store != nil {
		g.blocks.prune(now, g.cfg.BlockMemory)
		ch.state = encodeState(g.blocks.all())
	}
	return ch
}

// apply logs and counts the blocks of ch and saves its state. It runs without mu held.
func (g *Guard) apply(ch change) error {
	for _, b := range ch.blocks {
		g.m.blocks.WithLabelValues(b.Reason).Inc()
		g.log.LogAttrs(context.Background(), slog.LevelWarn, "address blocked",
			slog.String("prefix", b.Prefix.String()), slog.String("reason", b.Reason),
			slog.Time("until", b.Until), slog.Int("count", b.Count))
	}
	if ch.state == nil {
		return nil
	}
	g.saveMu.Lock()
	defer g.saveMu.Unlock()
	if ch.version <= g.saved {
		return nil // a later state has been saved already
	}
	if err := g.cfg.Store.Save(ch.state); err != nil {
		g.m.stateError.WithLabelValues("save").Inc()
		g.log.LogAttrs(context.Background(), slog.LevelError, "saving blocks failed", slog.Any("error", err))
		return fmt.Errorf("ipguard: save state: %w", err)
	}
	g.saved = ch.version
	return nil
}

// maintainLocked forgets idle keys from the tail of the recency list, a few at a time, and
// once per pruneInterval drops block history past BlockMemory and known peers past their time.
func (g *Guard) maintainLocked(now time.Time) {
	for range sweepBatch {
		st := g.recency.tail
		if st == nil || now.Sub(st.lastSeen) < g.cfg.IdleTimeout {
			break
		}
		if st.inflight > 0 {
			// A ticket outliving IdleTimeout was never ended; keep its key, out of the way.
			g.recency.moveToFront(st)
			continue
		}
		g.forgetLocked(st)
	}
	if now.Sub(g.lastPrune) >= pruneInterval {
		g.blocks.prune(now, g.cfg.BlockMemory)
		for k, until := range g.known {
			if !now.Before(until) {
				delete(g.known, k)
			}
		}
		g.lastPrune = now
	}
}

// touchLocked returns key's state, created if needed, marked as seen at now.
func (g *Guard) touchLocked(key netip.Prefix, now time.Time) *keyState {
	if st := g.keys[key]; st != nil {
		st.lastSeen = now
		g.recency.moveToFront(st)
		return st
	}
	if len(g.keys) >= g.cfg.MaxKeys {
		g.evictLocked()
	}
	st := &keyState{key: key, lastSeen: now, limiter: rate.NewLimiter(g.cfg.ConnRate, g.cfg.ConnBurst)}
	g.keys[key] = st
	g.recency.pushFront(st)
	return st
}

// evictLocked forgets the least recently seen key with no handshake in flight. At most
// MaxHandshakes keys are in flight, so the scan is bounded.
func (g *Guard) evictLocked() {
	for st, n := g.recency.tail, 0; st != nil && n <= g.cfg.MaxHandshakes; st, n = st.prev, n+1 {
		if st.inflight == 0 {
			g.forgetLocked(st)
			g.m.evicted.Inc()
			return
		}
	}
}

func (g *Guard) forgetLocked(st *keyState) {
	g.recency.remove(st)
	delete(g.keys, st.key)
}

// spared reports whether addr (unmapped) is a loopback address the guard does not block.
func (g *Guard) spared(addr netip.Addr) bool {
	return !g.cfg.BlockLoopback && addr.IsLoopback()
}

// spare counts and logs, once per burst, a block not imposed on a loopback address.
func (g *Guard) spare(addr netip.Addr, key netip.Prefix, reason string) {
	g.m.spared.WithLabelValues(reason).Inc()
	g.spareLog.Hit(context.Background(), slog.String("addr", addr.String()),
		slog.String("key", key.String()), slog.String("reason", reason))
}

// loopbackPrefix reports whether p is a loopback key or holds ::1, the only keys and /48
// loopback connections are counted under.
func loopbackPrefix(p netip.Prefix) bool {
	return p.Addr().IsLoopback() || p.Contains(netip.IPv6Loopback())
}

// neverBlock reports whether addr (unmapped) is in the never-block list.
func (g *Guard) neverBlock(addr netip.Addr) bool {
	for _, p := range g.never {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// neverBlockPrefix reports whether all of p lies in the never-block list.
func (g *Guard) neverBlockPrefix(p netip.Prefix) bool {
	for _, n := range g.never {
		if n.Bits() <= p.Bits() && n.Contains(p.Addr()) {
			return true
		}
	}
	return false
}

// refused counts and logs a refusal. Refusals are logged at Debug: a flood would otherwise
// flood the log too; the metric and the block record carry the signal.
func (g *Guard) refused(reason string, addr netip.Addr, key netip.Prefix) {
	g.m.refused.WithLabelValues(reason).Inc()
	g.debug("connection refused", addr, key, slog.String("reason", reason))
}

// debug logs a decision at Debug level, building attributes only when Debug is enabled: Admit
// is on the accept path.
func (g *Guard) debug(msg string, addr netip.Addr, key netip.Prefix, attrs ...slog.Attr) {
	ctx := context.Background()
	if !g.log.Enabled(ctx, slog.LevelDebug) {
		return
	}
	attrs = append(attrs, slog.String("addr", addr.String()), slog.String("key", key.String()))
	g.log.LogAttrs(ctx, slog.LevelDebug, msg, attrs...)
}
