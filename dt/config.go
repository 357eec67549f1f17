package dt

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"
)

// Config configures a Node. Zero values mean the documented default; Open does not modify the
// Config it is given, and the node does not read it again after Open returns.
type Config struct {
	// Keys holds the network key, the trusted master public keys and, on a master, the master key.
	Keys Keys
	// Master makes this node a writer: it may add and remove objects. It needs Keys.Master, or
	// Keys.Publisher to write as a publisher: then only what the publisher's grant in the table
	// covers (see GrantKeyPrefix), and a write outside it fails at once with ErrOutsideGrant.
	// A master key wins when both are set. False: the node only relays.
	Master bool
	// DataDir holds the node's identity (node.key), its database (dt.db) and its blobs. Required.
	DataDir string

	// Listen lists the addresses to accept peers on ("127.0.0.1:7000", "[::1]:7000"). Empty means
	// no listener: the node only dials out, as a master behind NAT does.
	Listen []string
	// Peers lists the addresses to dial. Links are used in both directions whoever dialed.
	Peers []string
	// Epoch is bound into every handshake and record: bump it to start an empty table on the same
	// network key. Zero is a valid epoch.
	Epoch uint32

	// Logger receives the node's logs. Nil discards them.
	Logger *slog.Logger
	// Registerer receives the node's Prometheus metrics. Nil registers nothing.
	Registerer prometheus.Registerer
	// Random is the source of keys and ids. Nil means crypto/rand.
	Random io.Reader
	// Now is the wall clock. Nil means time.Now.
	Now func() time.Time
	// Dial opens connections to peers. Nil means a net.Dialer with DefaultDialTimeout.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)

	// TombstoneTTL is how long a delete record is kept before it is collected. It must exceed the
	// longest time a node may be offline and still come back with its data. Zero means
	// DefaultTombstoneTTL.
	TombstoneTTL time.Duration
	// MaxClockSkew rejects records whose clock runs further ahead of the local clock. Zero means
	// DefaultMaxClockSkew.
	MaxClockSkew time.Duration
	// AntiEntropyInterval is how often each dialed link runs a full set reconciliation as a check
	// behind the delta stream. Zero means DefaultAntiEntropyInterval.
	AntiEntropyInterval time.Duration
	// KeepAliveInterval is how often an idle link is pinged. Zero means DefaultKeepAliveInterval.
	KeepAliveInterval time.Duration
	// LinkTimeout is how long a ping or write may take before the link is declared dead. Together
	// with the keepalive this bounds detection of a dead peer to about KeepAliveInterval +
	// LinkTimeout. Zero means DefaultLinkTimeout.
	LinkTimeout time.Duration
	// RedialMin and RedialMax bound the exponential backoff between dials of one peer address.
	// Zero means DefaultRedialMin and DefaultRedialMax.
	RedialMin, RedialMax time.Duration

	// MessageWindow is how far a message's timestamp may be from the local clock, and how long its
	// id is remembered to drop duplicates. Zero means DefaultMessageWindow.
	MessageWindow time.Duration
	// MaxMessageSize bounds a message's JSON payload. Zero means DefaultMaxMessageSize.
	MaxMessageSize int
	// MessageRate and MessageBurst bound how many messages per second one origin may flood through
	// this node. Zero means DefaultMessageRate and DefaultMessageBurst. Excess messages are
	// dropped, counted in
	// dt_messages_dropped_total and logged (and reported as an error event) once per burst, as are
	// those over the budgets below.
	MessageRate  rate.Limit
	MessageBurst int
	// LinkMessageRate and LinkMessageBurst bound the messages one neighbour may deliver to this
	// node, whatever their origins (a quarter of them kept for quiet origins, see
	// QuietOriginRate): an address for links it dialed to us (so identities made per
	// connection share one budget), an identity for links we dialed. This is the bound on a flood
	// from one holder of the network key, who can make a new identity per message; a flood passes
	// this node at no more than this rate. Every message of the network may cross one link, so
	// it must exceed the network's whole honest message rate: edges send one heartbeat per 2 s.
	// Zero means DefaultLinkMessageRate and DefaultLinkMessageBurst.
	LinkMessageRate  rate.Limit
	LinkMessageBurst int
	// QuietOriginRate is the rate at or under which an origin counts as quiet: its messages may
	// use the quarter of each neighbour's LinkMessageRate kept for quiet origins, so that a flood
	// through a neighbour does not starve the heartbeats relayed through it; its burst is five
	// seconds' worth. Zero means DefaultQuietOriginRate.
	QuietOriginRate rate.Limit
	// NewOriginRate and NewOriginBurst bound how many origins this node does not know yet one
	// neighbour may introduce; messages from further new origins are dropped before they spend
	// the neighbour's LinkMessageRate, so a flood of identities made per message does not crowd
	// out the established origins it shares a link with. A node learns a network's origins once
	// (they stay known up to MaxOrigins) and CLI tools add one per run. Zero means
	// DefaultNewOriginRate and DefaultNewOriginBurst.
	NewOriginRate  rate.Limit
	NewOriginBurst int
	// MaxOrigins bounds the origins (and their MessageRate budgets) remembered; past it the least
	// recently heard is forgotten, and counts as new when it is heard again. Zero means
	// DefaultMaxOrigins.
	MaxOrigins int
	// MaxSeenMessages bounds the message ids remembered to drop duplicates. Ids are remembered
	// for MessageWindow; when half the bound is reached within a window, the older half is
	// forgotten early. That cannot start a replay storm: a message whose id was forgotten is
	// taken again only within MessageWindow of its origin's clock, within the budgets above, and
	// never past MaxHops. Zero means DefaultMaxSeenMessages.
	MaxSeenMessages int
	// MaxLinksPerAddress bounds the links peers may dial to this node from one address (an IPv4
	// address or IPv6 /64): a holder of the network key can link under as many identities as it
	// likes, and each link holds goroutines, buffers and a descriptor. Links beyond it are closed
	// after the handshake, counted in dt_links_refused_total and logged once per burst. Links
	// this node dials are not counted. Zero means DefaultMaxLinksPerAddress.
	MaxLinksPerAddress int
	// MessageQueueBytes bounds the bytes of flooded messages queued for one peer; a peer that
	// falls further behind is disconnected (and resyncs on reconnect). Zero means
	// DefaultMessageQueueBytes.
	MessageQueueBytes int
	// MaxHops bounds how far a message is forwarded. Zero means DefaultMaxHops.
	MaxHops int
	// MaxObjectSize bounds an object's canonical JSON (or a keyed body). Zero means
	// DefaultMaxObjectSize.
	MaxObjectSize int64
	// InlineBodyMax is the largest body stored in the database and sent inline with its record;
	// larger bodies go to the blob store and travel on their own streams. Zero means
	// DefaultInlineBodyMax.
	InlineBodyMax int

	// LazyBodies makes the node keep records without fetching bodies that do not travel inline
	// (over InlineBodyMax): Get returns ErrNotFound for them and their events carry no object. It
	// is for transient masters (a publisher on a laptop) that need to know what the table holds,
	// not its data. A lazy node does not pass such records on, since it could not serve their
	// bodies. Default false.
	LazyBodies bool

	// Guard configures address blocking at accept. The zero value means the defaults documented
	// on each GuardConfig field.
	Guard GuardConfig

	// Events are called, in order, for every event of the node from EventStarted on, on the
	// node's event goroutine: one handler at a time, never concurrently, each event to every
	// handler before the next event. They see the same events as a subscription made at Open
	// (see Node.Subscribe). A handler that blocks delays only the events after it; the table keeps
	// changing meanwhile and events queue, up to EventBuffer for messages and errors. Nil means
	// none.
	Events []EventHandler
	// EventBuffer is how many events may wait for one subscriber (Config.Events, Node.Subscribe,
	// Node.Events) before message and error events for it are dropped: a consumer that falls
	// behind loses those, counted in dt_events_dropped_total and logged once per burst. Object
	// events are never dropped, so the queue may hold more than EventBuffer of them; each is
	// small, since a body over InlineBodyMax is read from the blob store only when it is
	// delivered. Zero means DefaultEventBuffer.
	EventBuffer int

	// NoSync skips fsync in the database and blob store: for tests and benchmarks only. A crash then
	// may lose or corrupt data.
	NoSync bool
}

func (c Config) withDefaults() Config {
	orDefault(&c.TombstoneTTL, DefaultTombstoneTTL)
	orDefault(&c.MaxClockSkew, DefaultMaxClockSkew)
	orDefault(&c.AntiEntropyInterval, DefaultAntiEntropyInterval)
	orDefault(&c.KeepAliveInterval, DefaultKeepAliveInterval)
	orDefault(&c.LinkTimeout, DefaultLinkTimeout)
	orDefault(&c.RedialMin, DefaultRedialMin)
	orDefault(&c.RedialMax, DefaultRedialMax)
	orDefault(&c.MessageWindow, DefaultMessageWindow)
	orDefault(&c.MaxMessageSize, DefaultMaxMessageSize)
	orDefault(&c.MessageRate, DefaultMessageRate)
	orDefault(&c.MessageBurst, DefaultMessageBurst)
	orDefault(&c.LinkMessageRate, DefaultLinkMessageRate)
	orDefault(&c.LinkMessageBurst, DefaultLinkMessageBurst)
	orDefault(&c.QuietOriginRate, DefaultQuietOriginRate)
	orDefault(&c.NewOriginRate, DefaultNewOriginRate)
	orDefault(&c.NewOriginBurst, DefaultNewOriginBurst)
	orDefault(&c.MaxOrigins, DefaultMaxOrigins)
	orDefault(&c.MaxSeenMessages, DefaultMaxSeenMessages)
	orDefault(&c.MaxLinksPerAddress, DefaultMaxLinksPerAddress)
	orDefault(&c.MessageQueueBytes, DefaultMessageQueueBytes)
	orDefault(&c.MaxHops, DefaultMaxHops)
	orDefault(&c.MaxObjectSize, DefaultMaxObjectSize)
	orDefault(&c.InlineBodyMax, DefaultInlineBodyMax)
	orDefault(&c.EventBuffer, DefaultEventBuffer)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Dial == nil {
		d := &net.Dialer{Timeout: DefaultDialTimeout}
		c.Dial = d.DialContext
	}
	return c
}

// orDefault sets *p to v when it is the zero value.
func orDefault[T comparable](p *T, v T) {
	var zero T
	if *p == zero {
		*p = v
	}
}

func (c Config) validate() error {
	var errs []error
	if c.DataDir == "" {
		errs = append(errs, errors.New("dt: Config.DataDir is required"))
	}
	if c.Master && c.Keys.Master == nil && c.Keys.Publisher == nil {
		errs = append(errs, errors.New("dt: a master node needs Keys.Master (master.key) or Keys.Publisher (publisher.key)"))
	}
	if c.Keys.Network == (NetworkKey{}) {
		errs = append(errs, errors.New("dt: Config.Keys.Network is empty"))
	}
	if c.MaxMessageSize > maxFrameSize/2 {
		errs = append(errs, fmt.Errorf("dt: MaxMessageSize %d over %d", c.MaxMessageSize, maxFrameSize/2))
	}
	if c.InlineBodyMax > maxFrameSize/2 {
		errs = append(errs, fmt.Errorf("dt: InlineBodyMax %d over %d", c.InlineBodyMax, maxFrameSize/2))
	}
	if c.MessageRate < 0 || c.LinkMessageRate < 0 || c.NewOriginRate < 0 || c.QuietOriginRate < 0 {
		errs = append(errs, errors.New("dt: negative MessageRate, LinkMessageRate, NewOriginRate or QuietOriginRate"))
	}
	if c.MessageBurst < 0 || c.LinkMessageBurst < 0 || c.NewOriginBurst < 0 {
		errs = append(errs, errors.New("dt: negative MessageBurst, LinkMessageBurst or NewOriginBurst"))
	}
	if c.MaxOrigins < 0 || c.MessageQueueBytes < 0 || c.MaxLinksPerAddress < 0 {
		errs = append(errs, errors.New("dt: negative MaxOrigins, MessageQueueBytes or MaxLinksPerAddress"))
	}
	if c.MaxSeenMessages < 0 || c.MaxSeenMessages == 1 {
		errs = append(errs, fmt.Errorf("dt: MaxSeenMessages %d, want at least 2", c.MaxSeenMessages))
	}
	if c.MessageQueueBytes > 0 && c.MessageQueueBytes < c.MaxMessageSize+256 {
		errs = append(errs, fmt.Errorf("dt: MessageQueueBytes %d cannot hold one message of MaxMessageSize %d", c.MessageQueueBytes, c.MaxMessageSize))
	}
	if c.EventBuffer < 0 {
		errs = append(errs, errors.New("dt: negative EventBuffer"))
	}
	if c.MaxHops > 255 {
		errs = append(errs, errors.New("dt: MaxHops over 255"))
	}
	return errors.Join(errs...)
}

// LocalConfig returns fast timers for nodes on one machine: tests, the example and the load test.
func LocalConfig() Config {
	return Config{
		KeepAliveInterval: 500 * time.Millisecond,
		LinkTimeout:       2 * time.Second,
		RedialMin:         20 * time.Millisecond,
		RedialMax:         500 * time.Millisecond,
	}
}
