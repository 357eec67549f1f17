package dt

import (
	"log/slog"
	"net/netip"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/dt-cdn/dt/dt/internal/ipguard"
)

// GuardConfig tunes the address guard that admits connections at accept, before any
// cryptography (see the package documentation, Transport). A zero field means the default given
// in its comment; negative values are invalid. The guard logs with Config.Logger, registers its
// metrics (dt_ipguard_*) on Config.Registerer, reads Config.Now and keeps its blocks in the
// node's database.
type GuardConfig struct {
	// NeverBlock lists networks that are never blocked, rate limited or refused for load, such as
	// the operator's own nodes and monitoring. Their connections do not take a handshake slot, so
	// a flood from elsewhere cannot lock them out. IPv4-mapped IPv6 prefixes are treated as the
	// IPv4 prefixes they carry. Empty means none.
	NeverBlock []netip.Prefix
	// BlockLoopback lets the guard block loopback addresses (127.0.0.0/8 and ::1). By default
	// they are never blocked: a connection from loopback is the operator's own command on the
	// node's machine, and a typo in its keys must not lock the operator out. Failures from
	// loopback still count, and a block they reach is only logged and counted in
	// dt_ipguard_spared_blocks_total; the rate limit and handshake caps still apply. Set it when
	// peers reach the node through a proxy or tunnel on the same machine.
	BlockLoopback bool

	// ConnRate is the sustained rate of new connections one address may open, per second; faster
	// ones are refused. rate.Inf disables the limit. Zero means 2: a node reconnecting after a
	// failure needs far less, a scanner far more.
	ConnRate rate.Limit
	// ConnBurst is how many connections an address may open at once before ConnRate applies. Zero
	// means 20: enough for a node restarting all its links together.
	ConnBurst int
	// ConnWindow is the period over which unauthenticated connections are counted for
	// WarnConnections and BlockConnections. Zero means one hour.
	ConnWindow time.Duration
	// WarnConnections is the count of unauthenticated connections within ConnWindow at which an
	// address is logged as suspicious, at most once per ConnWindow. Zero means 80.
	WarnConnections int
	// BlockConnections is the count of unauthenticated connections within ConnWindow an address
	// may not exceed: the next one blocks it. Zero means 600.
	BlockConnections int
	// FailureThreshold is how many failed handshakes within FailureWindow block an address. Zero
	// means 5.
	FailureThreshold int
	// FailureWindow is the sliding window of FailureThreshold. Zero means 10 minutes.
	FailureWindow time.Duration
	// BlockDurations are the lengths of an address's first, second, ... block; every later block
	// takes the last one. Empty means 1 h, 6 h, 24 h: a misconfigured node recovers within the
	// hour, while a persistent attacker is held off for a day at a time.
	BlockDurations []time.Duration
	// BlockMemory is how long an address's block count is remembered after its last block ended.
	// Zero means 7 days.
	BlockMemory time.Duration
	// SubnetThreshold is how many /64s of one IPv6 /48 must be blocked at once for the whole /48
	// to be blocked. Zero means 40 (node-ip-ac's default).
	SubnetThreshold int

	// MaxHandshakes caps the handshakes in flight over all addresses, bounding the CPU and memory
	// an unauthenticated flood can take. Zero means 256.
	MaxHandshakes int
	// MaxHandshakesPerSubnet caps the handshakes in flight from one IPv4 /24 or IPv6 /48. Known
	// peers are not counted against it. Zero means MaxHandshakes/16 (16 by default), at least 1.
	MaxHandshakesPerSubnet int
	// ReservedHandshakes is the share of MaxHandshakes only known peers may take (addresses that
	// completed a handshake within KnownPeerTTL, and the peers the node dials), so a known peer
	// reconnecting finds a slot whoever holds the others. Zero means MaxHandshakes/4.
	ReservedHandshakes int
	// HandshakeTimeout is how long a handshake may take. Zero means 5 seconds.
	HandshakeTimeout time.Duration
	// PressureHandshakeTimeout replaces HandshakeTimeout for addresses not known while more than
	// half of MaxHandshakes are in flight, so slots held by connections that send nothing turn
	// over faster; a handshake takes 1.5 round trips, so it still leaves room for links across
	// the world. Zero means 1 second.
	PressureHandshakeTimeout time.Duration
	// KnownPeerTTL is how long an address stays known after its last successful handshake. Zero
	// means 24 hours: a peer down for a day is still let in first.
	KnownPeerTTL time.Duration
	// MaxKnownPeers caps the known addresses remembered; past it the one known longest ago is
	// forgotten. Zero means 4096.
	MaxKnownPeers int
	// IdleTimeout is how long an address with no handshake in flight and no activity is
	// remembered. It must be at least ConnWindow and FailureWindow. Zero means one hour or the
	// longer of those two windows.
	IdleTimeout time.Duration
	// MaxKeys caps the addresses tracked; when full, the least recently seen one with no handshake
	// in flight is forgotten (blocks are kept). Zero means 100,000 (about 45 MB when every one has
	// a recent failure).
	MaxKeys int
}

// ipguardConfig converts the settings for package ipguard, with the node's logger, metrics,
// clock and database. ipguard applies the defaults of zero fields.
func (g GuardConfig) ipguardConfig(log *slog.Logger, reg prometheus.Registerer, now func() time.Time, store ipguard.Store) ipguard.Config {
	return ipguard.Config{
		Store:                    store,
		Logger:                   log,
		Registerer:               reg,
		Now:                      now,
		NeverBlock:               g.NeverBlock,
		BlockLoopback:            g.BlockLoopback,
		ConnRate:                 g.ConnRate,
		ConnBurst:                g.ConnBurst,
		ConnWindow:               g.ConnWindow,
		WarnConnections:          g.WarnConnections,
		BlockConnections:         g.BlockConnections,
		FailureThreshold:         g.FailureThreshold,
		FailureWindow:            g.FailureWindow,
		BlockDurations:           g.BlockDurations,
		BlockMemory:              g.BlockMemory,
		SubnetThreshold:          g.SubnetThreshold,
		MaxHandshakes:            g.MaxHandshakes,
		MaxHandshakesPerSubnet:   g.MaxHandshakesPerSubnet,
		ReservedHandshakes:       g.ReservedHandshakes,
		HandshakeTimeout:         g.HandshakeTimeout,
		PressureHandshakeTimeout: g.PressureHandshakeTimeout,
		KnownPeerTTL:             g.KnownPeerTTL,
		MaxKnownPeers:            g.MaxKnownPeers,
		IdleTimeout:              g.IdleTimeout,
		MaxKeys:                  g.MaxKeys,
	}
}
