// Package dt is a replicated table: the protocol of node-distributed-table, done properly.
//
// A dt network is a set of nodes that share a network key. Master nodes, which also hold a master
// signing key, add and remove objects; every node keeps a full replica and relays changes; any
// node may flood messages to every node online. dt is what the CDN's publishing, edges and
// redirector run on, and what replicated DNS zones run on.
//
// # The table
//
// The table maps keys to JSON bodies. For the object API of node-distributed-table, the network
// dt descends from (AddObject, RemoveObject), the key is the object's id: the hex SHA-256 of its
// canonical JSON (sorted keys), so the table is a set of objects. Every change is a Record signed by a master's Ed25519 key and bound to the table (a
// hash of the network key) and an epoch. Per key, the record with the highest (hybrid logical
// clock, writer id, record id) wins; a removal is a signed tombstone that wins the same way and
// is collected after Config.TombstoneTTL. So "the master's set wins" is well defined with several
// masters, with several processes holding one master key, and in any delivery order.
//
// # Vocabulary
//
// An object is a body the table holds under a key; a record is the signed change that put it
// there or removed it. The API has two layers over the same records:
//
//   - objects: AddObject and AddObjects add objects under their ids, RemoveObject removes one;
//   - keys: Put and PutMany write bodies under keys of the caller's choosing (a deploy's
//     manifest, a DNS zone's records), Delete and DeleteMany remove them.
//
// Reading is the same for both: Get(ctx, key) returns a body (fetching it from a peer on a node
// with Config.LazyBodies), Has and Version describe a key, ObjectKeys lists the keys held.
// Keys, the type, is the network's cryptographic keys, not the table's.
//
// # Guarantees
//
//   - Only records signed by a trusted master (Keys.Masters), or by a key a master granted a
//     scope that covers the record (see GrantKeyPrefix), are applied or relayed. A node that
//     holds the network key but no master key can relay records and send messages; it cannot
//     forge or delete anything. A peer that sends a forged or malformed record is disconnected,
//     and its address earns a strike toward being blocked. Records of a granted key are judged
//     against its grant by the record's clock, so every node reaches the same verdict whatever
//     order grants, revocations and records arrive in (see Grants below).
//   - Convergence: any two linked nodes end up holding the same records, whatever each held
//     before and however long it was away. A node that comes back makes
//     itself equal to the network: what was removed meanwhile is removed (with events), what was
//     added arrives. A partitioned segment converges once it links to any node with the newer
//     records; nodes relay, so a path to a master is enough. A node away for longer than
//     Config.TombstoneTTL can no longer tell removed objects from live ones (their tombstones
//     may be collected), so it empties its table at start and syncs it anew.
//   - A master that starts with partial or no state (a new laptop) never wipes the network: there
//     is no "replace the set" operation, and before its first write it learns the network's clock
//     from a peer, so its new records win over its old ones.
//   - A master need not listen: links carry records both ways whoever dialed, so a master behind
//     NAT only dials out.
//   - Messages are signed by their sending node and reach every node online at most once, and
//     exactly once within the flood limits below: they are forwarded on every link but the one
//     they came on, duplicates are dropped by id for Config.MessageWindow, and a hop limit
//     bounds any cycle.
//   - Durability: records and metadata are in bbolt (dt.db), bodies over Config.InlineBodyMax in a
//     content-addressed blob store, so a restart resumes where it stopped with no full resync, and
//     a crash (kill -9) loses nothing that was committed.
//
// # Grants
//
// A master may delegate key prefixes to another Ed25519 key (a publisher's) by writing a grant
// under GrantKeyPrefix; Keys.Publisher then writes within it. Each node judges a record of a
// key other than a master's when it would commit it: applied when the signer's grant covers
// the record's key, operation and clock ([not_before, not_after)); refused with ErrOutsideGrant,
// which names the rule, otherwise; kept pending (at most MaxPendingRecords and MaxPendingBytes)
// while the table holds no grant record for the signer at all. A revocation is a newer grant
// with not_after set, so a record stamped before it stays valid everywhere and a later one is
// invalid everywhere. A node that applied a record a grant change invalidates drops it, with a
// removal event, and reconciles with its peers to take back what that record replaced; when every
// node had applied it, the key ends absent on every node. Once a link has caught up with its
// peer's log, a record that peer sent whose signer still has no grant is forged.
//
// A node tells the peer a record came from what it did with it when it did not simply apply it:
// refused, with the rule in words, or kept pending (then applied, once the grant came). The
// record's writer learns it in WaitReplicated, which returns a *VerdictError wrapping ErrRefused
// instead of counting that peer's acknowledgement as a confirmation. These verdicts are bounded
// per link (VerdictRate, VerdictBurst); nodes of earlier releases skip them (see verdict.go).
//
// # Sync
//
// Each node keeps a log of its current records in the order it applied them. On every link, each
// side streams its log to the other from the position the other holds (a per-peer cursor, the
// delta index that Syncthing uses): one round trip and bytes in proportion to the changes. A peer
// with no cursor (new, or whose data was wiped) first runs range-based set reconciliation
// (package rbsr, the Negentropy v1 protocol): a few hundred bytes when nothing differs, a few
// kilobytes for ten differences at 100,000 records. Dialed links repeat that reconciliation every
// Config.AntiEntropyInterval as a check. Bodies over InlineBodyMax travel on their own streams,
// fetched from the peer that announced the record and verified by hash, so they never delay
// records, messages or keepalives.
//
// # Transport
//
// Links are TCP (IPv4 or IPv6) with Noise XXpsk3 (package securelink): mutual authentication by
// node keys, the network key as the pre-shared key, forward secrecy, and AEAD framing that kills
// the session on any tampered, replayed or reordered frame. The address guard (package ipguard)
// runs at accept, before any cryptography: it rate-limits and blocks addresses that fail to
// authenticate or misbehave, and its blocks survive restarts. Loopback addresses are never
// blocked unless Config.Guard.BlockLoopback is set. Node.Blocks lists the blocks and
// Node.Unblock lifts them (OpenStoredBlocks does the same for a node that is not running); a
// lift is saved at once.
//
// # Flood limits
//
// Identities are not registered: any holder of the network key may make one per message, so a
// limit per origin alone bounds nothing. A node takes a flooded message only within three
// budgets, checked in this order before the signature (so a dropped message costs a hash and a
// few token buckets, and is not forwarded):
//
//   - its origin's: Config.MessageRate (200/s, burst 400), for one identity;
//   - for an origin the node does not know yet, the delivering neighbour's budget of new
//     origins: Config.NewOriginRate (1/s, burst 64). Identities made per message end here,
//     before they spend anything of the neighbour's budget that established origins share;
//   - the delivering neighbour's: Config.LinkMessageRate (1000/s, burst 2000), whatever the
//     origins. A quarter is kept for quiet origins (at most Config.QuietOriginRate, 2/s, which
//     heartbeats are), so that established origins flooding through a neighbour do not starve
//     the heartbeats it relays.
//
// A neighbour is the remote address (an IPv4 address or IPv6 /64) of a link it dialed to us, so
// identities made per connection share one budget, and the peer's identity for a link we dialed.
// A flood from one key holder thus leaves a node at no more than LinkMessageRate per address it
// holds. Memory stays bounded however fast messages come: message ids remembered
// (Config.MaxSeenMessages; the older half is forgotten early when it fills), origins
// (Config.MaxOrigins, least recently heard forgotten first), neighbours (4096), the messages
// queued for each peer (4096 and Config.MessageQueueBytes; a peer further behind is
// disconnected), and the links dialed in from one address (Config.MaxLinksPerAddress). Drops
// are counted in dt_messages_dropped_total by reason and logged once per burst. What is not
// bounded: a key holder patient enough to establish origins one per second per address can,
// with enough of them, take the quiet reserve too; it still gets no more than LinkMessageRate
// per address.
//
// Handshakes are admitted by the address guard (package ipguard) before any cryptography: at
// most 256 in flight, 16 per IPv4 /24 or IPv6 /48, a quarter of the slots kept for known peers
// (addresses that completed a handshake within a day, and the peers this node dials), and a
// deadline of 5 s that drops to 1 s for other addresses while more than half the slots are
// taken.
//
// # Events
//
// Events reach handlers through subscriptions: Config.Events, called from EventStarted on; and
// Node.Subscribe (Node.Events is a subscription whose handler sends on a channel), which begins
// with EventStarted and an EventObjectAdded for every object held at that moment. Each
// subscription then gets every change in commit order (including those the first sync brings,
// and removals of objects removed while the node was away), messages and errors, on a goroutine
// of its own. The node never waits for a handler: events queue per subscription. Object events
// are never dropped, so the objects a subscriber sees are exact; a body over
// Config.InlineBodyMax waits in the queue as its hash and is read from the blob store when the
// event is delivered, and a body removed or replaced meanwhile is kept until then. Messages and
// errors beyond Config.EventBuffer queued for one subscriber are dropped for it, counted in
// dt_events_dropped_total and logged once per burst. Close stops every subscription and closes
// the Events channel.
package dt
