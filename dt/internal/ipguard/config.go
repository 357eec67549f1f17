package ipguard

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/netip"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"
)

// Store persists the guard's blocks across restarts. A dt node implements it with its bbolt
// database. Load and Save are called by one goroutine at a time; Save may be called from the
// goroutine that calls [Guard.Admit], [Ticket.Failed] or [Guard.Unblock].
type Store interface {
	// Load returns the state last passed to Save, or nil (and no error) when there is none.
	Load() ([]byte, error)
	// Save replaces the stored state. The guard does not keep or modify state after Save
	// returns, and Save must not keep it either without copying.
	Save(state []byte) error
}

// Config tunes a [Guard]. A zero field means its default, as given by [DefaultConfig]; negative
// values are invalid. [New] copies the Config: changing it afterwards has no effect.
type Config struct {
	// Store persists blocks so they survive a restart. If nil, blocks live in memory only.
	Store Store

	// Logger receives one record per decision at Debug (admissions, refusals, outcomes), blocks
	// and warnings at Warn, operator actions at Info, and once per burst (with the count the
	// burst swallowed) failed handshakes at Info and refusals for lack of a slot at Warn. If
	// nil, nothing is logged.
	Logger *slog.Logger

	// Registerer receives the guard's Prometheus metrics (namespace "dt", subsystem "ipguard").
	// If nil, metrics are kept but not registered. Registering two guards on one Registerer
	// fails, since their metric names collide.
	Registerer prometheus.Registerer

	// Now returns the current time. Tests inject a clock here. If nil, time.Now.
	Now func() time.Time

	// NeverBlock lists networks that are never blocked, rate limited or refused for load, such
	// as the operator's own nodes and monitoring. Their connections do not take a handshake slot,
	// so a flood from elsewhere cannot lock them out. IPv4-mapped IPv6 prefixes
	// (::ffff:0:0/96 and longer) are treated as the IPv4 prefixes they carry. Empty means none.
	NeverBlock []netip.Prefix

	// BlockLoopback lets the guard block loopback addresses (127.0.0.0/8 and ::1). By default
	// they are never blocked, as fail2ban's default ignoreip does: a connection from loopback
	// is the operator's own command on the node's machine, and a typo in its keys must not lock
	// the operator out. Failures from loopback are still counted, and when they reach a block
	// the block is only logged (once per burst) and counted in spared_blocks_total. Unlike
	// NeverBlock, the exemption does not lift the rate limit or the handshake slot caps: those
	// bound a flood rather than lock anyone out. Set it when peers reach the node through a
	// proxy or tunnel on the same machine, where every connection arrives from loopback.
	BlockLoopback bool

	// ConnRate is the sustained rate of new connections a key may open, in connections per
	// second; faster connections are refused with [ErrRateLimited]. rate.Inf disables the
	// limit. If zero, 2: a node reconnecting after a failure needs far less, a scanner far more.
	ConnRate rate.Limit

	// ConnBurst is how many connections a key may open at once before ConnRate applies.
	// If zero, 20: enough for a node restarting all its links together.
	ConnBurst int

	// ConnWindow is the period over which unauthenticated connections are counted for
	// WarnConnections and BlockConnections. If zero, one hour.
	ConnWindow time.Duration

	// WarnConnections is the count of unauthenticated connections within ConnWindow at which
	// a key is logged as suspicious, at most once per ConnWindow. If zero, 80.
	WarnConnections int

	// BlockConnections is the count of unauthenticated connections within ConnWindow that a
	// key may not exceed: the next one blocks it. A connection is unauthenticated unless its
	// ticket ends in [Ticket.Succeeded]; refused connections count too. If zero, 600.
	BlockConnections int

	// FailureThreshold is how many failed handshakes within FailureWindow block a key.
	// If zero, 5.
	FailureThreshold int

	// FailureWindow is the sliding window of FailureThreshold. If zero, 10 minutes.
	FailureWindow time.Duration

	// BlockDurations are the lengths of a key's first, second, ... block; every later block
	// takes the last one. If empty, 1 h, 6 h, 24 h: a misconfigured node recovers within the
	// hour, while a persistent attacker is held off for a day at a time.
	BlockDurations []time.Duration

	// BlockMemory is how long a key's block count is remembered after its last block ended;
	// afterwards its next block is a first block again. If zero, 7 days.
	BlockMemory time.Duration

	// SubnetThreshold is how many /64s of one IPv6 /48 must be blocked at the same time for the
	// whole /48 to be blocked. If zero, 40 (node-ip-ac's default).
	SubnetThreshold int

	// MaxHandshakes caps the handshakes in flight over all keys; beyond it [Guard.Admit]
	// refuses with [ErrBusy]. This bounds the CPU and memory an unauthenticated flood can
	// take. If zero, 256.
	MaxHandshakes int

	// MaxHandshakesPerSubnet caps the handshakes in flight from one IPv4 /24 or IPv6 /48 (a
	// hosting provider's range, a NAT pool): beyond it Admit refuses with [ErrBusy], so holding
	// the slots not reserved takes addresses in twelve subnets by default. Known peers are not
	// counted against it, and a handshake takes milliseconds, so even many nodes of one subnet
	// starting together do not reach it. If zero, MaxHandshakes/16 (16 by default), at least 1.
	MaxHandshakesPerSubnet int

	// ReservedHandshakes is the share of MaxHandshakes that only known peers may take: addresses
	// that completed a handshake within KnownPeerTTL and addresses marked with [Guard.AddKnown]
	// (the peers a node dials). However many addresses hold the other slots, a known peer
	// reconnecting finds one free. If zero, MaxHandshakes/4 (64 by default).
	ReservedHandshakes int

	// HandshakeTimeout is how long a caller should allow a handshake ([Ticket.Deadline]). The
	// guard does not enforce it: the caller sets the connection deadline and reports a timeout
	// with [Ticket.Failed]. If zero, 5 seconds.
	HandshakeTimeout time.Duration

	// PressureHandshakeTimeout replaces HandshakeTimeout for connections from addresses not
	// known admitted while more than half of MaxHandshakes are in flight, so that slots held by
	// connections that send nothing turn over five times as fast. A handshake takes 1.5 round trips, so it still leaves room for
	// links across the world. If zero, 1 second.
	PressureHandshakeTimeout time.Duration

	// KnownPeerTTL is how long an address stays known after its last successful handshake (or
	// [Guard.AddKnown]). If zero, 24 hours: a peer down for a day is still let in first.
	KnownPeerTTL time.Duration

	// MaxKnownPeers caps the known addresses remembered; past it the one known longest ago is
	// forgotten. If zero, 4096.
	MaxKnownPeers int

	// IdleTimeout is how long a key with no handshake in flight and no activity is remembered.
	// It must be at least ConnWindow and FailureWindow, so that nothing that still counts is
	// forgotten. If zero, one hour or the longer of those two windows.
	IdleTimeout time.Duration

	// MaxKeys caps the keys tracked; when full, the least recently seen key with no handshake
	// in flight is forgotten. Blocks are not keys and are never dropped for room. If zero,
	// 100,000 (about 45 MB when every key has a recent failure).
	MaxKeys int
}

// Block reasons, as reported in [Block.Reason] and the blocks_total metric.
const (
	// BlockReasonFailures marks a key that failed authentication too often.
	BlockReasonFailures = "auth_failures"
	// BlockReasonConnections marks a key that opened too many unauthenticated connections.
	BlockReasonConnections = "connections"
	// BlockReasonSubnet marks an IPv6 /48 with too many blocked /64s.
	BlockReasonSubnet = "subnet"
)

// Failure reasons for [Ticket.Failed]. Other strings are accepted, logged as given and counted
// as "other", which keeps the metric's label set bounded.
const (
	// FailBadKey: the peer does not hold the network key, or its static key is not accepted.
	FailBadKey = "bad_key"
	// FailTimeout: the handshake did not finish within the deadline.
	FailTimeout = "timeout"
	// FailMalformed: the peer sent something that is not a valid handshake message.
	FailMalformed = "malformed"
)

// DefaultConfig returns the defaults that zero fields of a [Config] stand for, with Now set to
// time.Now and a Logger that discards.
func DefaultConfig() Config {
	return Config{
		Logger:           slog.New(slog.DiscardHandler),
		Now:              time.Now,
		ConnRate:         2,
		ConnBurst:        20,
		ConnWindow:       time.Hour,
		WarnConnections:  80,
		BlockConnections: 600,
		FailureThreshold: 5,
		FailureWindow:    10 * time.Minute,
		BlockDurations:   []time.Duration{time.Hour, 6 * time.Hour, 24 * time.Hour},
		BlockMemory:      7 * 24 * time.Hour,
		SubnetThreshold:  40,
		MaxHandshakes:    256,
		HandshakeTimeout: 5 * time.Second,
		IdleTimeout:      time.Hour,
		MaxKeys:          100_000,

		MaxHandshakesPerSubnet:   16,
		ReservedHandshakes:       64,
		PressureHandshakeTimeout: time.Second,
		KnownPeerTTL:             24 * time.Hour,
		MaxKnownPeers:            4096,
	}
}

// withDefaults returns a copy of c with zero fields set to their defaults and slices copied, so
// the caller's Config is never aliased.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	setDefault(&c.Logger, d.Logger)
	if c.Now == nil {
		c.Now = d.Now
	}
	setDefault(&c.ConnRate, d.ConnRate)
	setDefault(&c.ConnBurst, d.ConnBurst)
	setDefault(&c.ConnWindow, d.ConnWindow)
	setDefault(&c.WarnConnections, d.WarnConnections)
	setDefault(&c.BlockConnections, d.BlockConnections)
	setDefault(&c.FailureThreshold, d.FailureThreshold)
	setDefault(&c.FailureWindow, d.FailureWindow)
	setDefault(&c.BlockMemory, d.BlockMemory)
	setDefault(&c.SubnetThreshold, d.SubnetThreshold)
	setDefault(&c.MaxHandshakes, d.MaxHandshakes)
	setDefault(&c.HandshakeTimeout, d.HandshakeTimeout)
	setDefault(&c.MaxHandshakesPerSubnet, max(1, c.MaxHandshakes/16))
	setDefault(&c.ReservedHandshakes, c.MaxHandshakes/4)
	setDefault(&c.PressureHandshakeTimeout, d.PressureHandshakeTimeout)
	setDefault(&c.KnownPeerTTL, d.KnownPeerTTL)
	setDefault(&c.MaxKnownPeers, d.MaxKnownPeers)
	setDefault(&c.IdleTimeout, max(d.IdleTimeout, c.ConnWindow, c.FailureWindow))
	setDefault(&c.MaxKeys, d.MaxKeys)
	if len(c.BlockDurations) == 0 {
		c.BlockDurations = d.BlockDurations
	}
	c.BlockDurations = slices.Clone(c.BlockDurations)
	never := make([]netip.Prefix, 0, len(c.NeverBlock))
	for _, p := range c.NeverBlock {
		never = append(never, unmapPrefix(p))
	}
	c.NeverBlock = never
	return c
}

// setDefault sets *v to def when *v is its type's zero value.
func setDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

// validate reports every invalid field of a Config that went through withDefaults.
func (c Config) validate() error {
	var errs []error
	bad := func(field string, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: %s %s", ErrInvalidConfig, field, fmt.Sprintf(format, args...)))
	}
	if c.ConnRate < 0 || math.IsNaN(float64(c.ConnRate)) {
		bad("ConnRate", "is %v, want > 0", c.ConnRate)
	}
	positive := []struct {
		name string
		v    int64
	}{
		{"ConnBurst", int64(c.ConnBurst)},
		{"ConnWindow", int64(c.ConnWindow)},
		{"WarnConnections", int64(c.WarnConnections)},
		{"BlockConnections", int64(c.BlockConnections)},
		{"FailureThreshold", int64(c.FailureThreshold)},
		{"FailureWindow", int64(c.FailureWindow)},
		{"BlockMemory", int64(c.BlockMemory)},
		{"SubnetThreshold", int64(c.SubnetThreshold)},
		{"MaxHandshakes", int64(c.MaxHandshakes)},
		{"HandshakeTimeout", int64(c.HandshakeTimeout)},
		{"IdleTimeout", int64(c.IdleTimeout)},
		{"MaxHandshakesPerSubnet", int64(c.MaxHandshakesPerSubnet)},
		{"ReservedHandshakes", int64(c.ReservedHandshakes)},
		{"PressureHandshakeTimeout", int64(c.PressureHandshakeTimeout)},
		{"KnownPeerTTL", int64(c.KnownPeerTTL)},
		{"MaxKnownPeers", int64(c.MaxKnownPeers)},
		{"MaxKeys", int64(c.MaxKeys)},
	}
	for _, f := range positive {
		if f.v < 0 {
			bad(f.name, "is %d, want > 0", f.v)
		}
	}
	if c.WarnConnections > c.BlockConnections {
		bad("WarnConnections", "(%d) exceeds BlockConnections (%d), so it would never warn",
			c.WarnConnections, c.BlockConnections)
	}
	if c.ReservedHandshakes > 0 && c.ReservedHandshakes >= c.MaxHandshakes {
		bad("ReservedHandshakes", "(%d) leaves none of MaxHandshakes (%d) to addresses not known",
			c.ReservedHandshakes, c.MaxHandshakes)
	}
	if c.FailureThreshold > maxFailureThreshold {
		bad("FailureThreshold", "is %d, want at most %d", c.FailureThreshold, maxFailureThreshold)
	}
	if c.IdleTimeout < c.FailureWindow {
		bad("IdleTimeout", "(%v) is shorter than FailureWindow (%v), so failures would be forgotten",
			c.IdleTimeout, c.FailureWindow)
	}
	if c.IdleTimeout < c.ConnWindow {
		bad("IdleTimeout", "(%v) is shorter than ConnWindow (%v), so connection counts would be forgotten",
			c.IdleTimeout, c.ConnWindow)
	}
	for i, d := range c.BlockDurations {
		if d <= 0 {
			bad(fmt.Sprintf("BlockDurations[%d]", i), "is %v, want > 0", d)
		}
	}
	for i, p := range c.NeverBlock {
		if !p.IsValid() {
			bad(fmt.Sprintf("NeverBlock[%d]", i), "is not a valid prefix")
		}
	}
	return errors.Join(errs...)
}

// blockDuration returns the length of a key's count-th block.
func (c *Config) blockDuration(count int) time.Duration {
	return c.BlockDurations[max(1, min(count, len(c.BlockDurations)))-1]
}

// maxFailureThreshold bounds the failure times kept per key, and so the memory of each key.
const maxFailureThreshold = 1000
