package ipguard

import (
	"context"
	"log/slog"
	"net/netip"
)

// FailMisbehaved labels a strike against a peer that authenticated and then broke the protocol.
const FailMisbehaved = "misbehaved"

// Strike counts a failure against addr outside a handshake: a peer that authenticated and then
// sent malformed frames or forged data. Strikes and handshake failures share one count, so a
// peer that keeps reconnecting to misbehave is blocked like one that keeps failing to
// authenticate. Strikes are counted apart from handshake failures and are not cleared by a
// successful handshake (the peer authenticates each time before it misbehaves): FailureThreshold
// strikes within FailureWindow block the key (a loopback address is spared as from handshake
// failures, see [Config.BlockLoopback]). Never-block addresses are not counted.
func (g *Guard) Strike(addr netip.Addr, reason string) {
	key := KeyOf(addr)
	if !key.IsValid() || g.neverBlock(addr) {
		return
	}
	now := g.cfg.Now()
	g.m.failures.WithLabelValues(FailMisbehaved).Inc()
	var ch change
	spare := false
	g.mu.Lock()
	st := g.touchLocked(key, now)
	if g.recordLocked(&st.strikes, key, now) {
		if g.spared(addr.WithZone("").Unmap()) {
			spare = true
		} else {
			ch = g.blockLocked(key, BlockReasonFailures, now)
		}
	}
	g.mu.Unlock()
	g.log.LogAttrs(context.Background(), slog.LevelInfo, "strike against peer",
		slog.String("addr", addr.String()), slog.String("prefix", key.String()), slog.String("reason", reason))
	if spare {
		g.spare(addr, key, BlockReasonFailures)
	}
	_ = g.apply(ch) // a failed save is logged and counted; the block holds in memory
}

// Close unregisters the guard's metrics, so another guard may register on the same registry. The
// guard keeps working without them. It is safe to call more than once.
func (g *Guard) Close() {
	if g.cfg.Registerer == nil {
		return
	}
	for _, c := range g.collectors {
		g.cfg.Registerer.Unregister(c)
	}
}
