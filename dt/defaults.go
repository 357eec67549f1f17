package dt

import (
	"time"

	"golang.org/x/time/rate"
)

// The defaults that zero fields of Config stand for; Open applies them in one place
// (Config.withDefaults). LocalConfig shortens the timers for nodes on one machine.
const (
	// DefaultTombstoneTTL keeps a removal for 30 days: a node offline for a month still learns
	// what was removed meanwhile; one away longer empties its table and syncs it anew.
	DefaultTombstoneTTL = 30 * 24 * time.Hour
	// DefaultMaxClockSkew is 5 minutes: far more than NTP-synced clocks drift, while a record
	// dated further ahead would win over every later write for that long.
	DefaultMaxClockSkew = 5 * time.Minute
	// DefaultAntiEntropyInterval is 5 minutes: a reconciliation costs a few hundred bytes when
	// nothing differs, and the delta stream already carries every change at once.
	DefaultAntiEntropyInterval = 5 * time.Minute
	// DefaultKeepAliveInterval is 2 seconds: with DefaultLinkTimeout a dead peer is noticed in
	// about 7 seconds, for a ping of a few bytes.
	DefaultKeepAliveInterval = 2 * time.Second
	// DefaultLinkTimeout is 5 seconds: a ping or write across the world takes well under a second,
	// so a link this slow is dead or hopelessly congested.
	DefaultLinkTimeout = 5 * time.Second
	// DefaultRedialMin is 100 ms: a peer that restarts is linked again at once.
	DefaultRedialMin = 100 * time.Millisecond
	// DefaultRedialMax is 10 seconds: a peer that is down costs one dial per 10 s, and is linked
	// within 10 s of coming back.
	DefaultRedialMax = 10 * time.Second
	// DefaultDialTimeout bounds one dial of a peer when Config.Dial is nil: a TCP connect across
	// the world takes well under a second.
	DefaultDialTimeout = 5 * time.Second

	// DefaultMessageWindow is 5 minutes, as DefaultMaxClockSkew: a message older than that is a
	// replay or from a clock too far off.
	DefaultMessageWindow = 5 * time.Minute
	// DefaultMaxMessageSize is 64 KiB: a heartbeat or a resolve answer takes a few hundred bytes;
	// data belongs in objects.
	DefaultMaxMessageSize = 64 << 10
	// DefaultMessageRate is 200 messages/s per origin: hundreds of times an edge's heartbeat
	// rate (one per 2 s), so only a flood reaches it.
	DefaultMessageRate rate.Limit = 200
	// DefaultMessageBurst is two seconds at DefaultMessageRate.
	DefaultMessageBurst = 400
	// DefaultLinkMessageRate is 1000 messages/s per neighbour: the heartbeats of 2000 edges (one
	// per 2 s each), or five origins at DefaultMessageRate.
	DefaultLinkMessageRate rate.Limit = 1000
	// DefaultLinkMessageBurst is two seconds at DefaultLinkMessageRate.
	DefaultLinkMessageBurst = 2000
	// DefaultQuietOriginRate is 2 messages/s: an edge sends one heartbeat per 2 s, so every
	// edge counts as quiet with room to spare.
	DefaultQuietOriginRate rate.Limit = 2
	// DefaultNewOriginRate is 1 new origin/s per neighbour: a node learns a network's origins once,
	// and identities made per message end here.
	DefaultNewOriginRate rate.Limit = 1
	// DefaultNewOriginBurst is 64: a restarted node learns 64 edges at once, the rest at
	// DefaultNewOriginRate.
	DefaultNewOriginBurst = 64
	// DefaultMaxOrigins is 10,000 origins, about 2 MB: five times the edges DefaultLinkMessageRate
	// carries heartbeats for.
	DefaultMaxOrigins = 10_000
	// DefaultMaxSeenMessages is 262,144 message ids, about 9 MB: a full DefaultMessageWindow at 870
	// messages/s.
	DefaultMaxSeenMessages = 1 << 18
	// DefaultMaxLinksPerAddress is 16: several nodes on one host or behind one NAT, while a key
	// holder minting identities gets no more links per address than that.
	DefaultMaxLinksPerAddress = 16
	// DefaultMessageQueueBytes is 16 MiB per peer: 256 messages of DefaultMaxMessageSize,
	// thousands of heartbeats.
	DefaultMessageQueueBytes = 16 << 20
	// DefaultMaxHops is 16: more than the diameter of any network of a few VPSes and their edges,
	// and a bound on any cycle.
	DefaultMaxHops = 16
	// DefaultMaxObjectSize is 256 MiB: a body is held in memory whole when it is written and when
	// it is read, so this bounds what one object costs.
	DefaultMaxObjectSize int64 = 256 << 20
	// DefaultInlineBodyMax is 16 KiB: most records (manifests, pointers, zones, small files) ride
	// with their record in one frame, while a large body never delays records, messages or
	// keepalives.
	DefaultInlineBodyMax = 16 << 10
	// DefaultEventBuffer is 4096 events per subscriber: four seconds of messages at the network's
	// whole DefaultLinkMessageRate, and at most 256 MiB if every one is of DefaultMaxMessageSize.
	// A consumer that falls further behind loses messages and errors, never object events.
	DefaultEventBuffer = 4096
)
