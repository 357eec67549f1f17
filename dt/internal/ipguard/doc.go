// Package ipguard decides, for every accepted TCP connection and before any cryptography runs,
// whether the remote address may attempt a handshake, and blocks addresses that abuse the listener.
//
// It is dt's replacement for node-ip-ac, the guard of the original node-distributed-table.
//
// # Keys
//
// Decisions are made per key: an IPv4 address (/32) or an IPv6 /64, the smallest block one
// subscriber is normally given (RFC 6177). An IPv4-mapped IPv6 address (::ffff:a.b.c.d, RFC 4291
// section 2.5.5.2) is the IPv4 address it carries. When enough /64s of one IPv6 /48 are blocked at
// once (40 by default), the whole /48 is blocked too, so an attacker cannot walk a routed prefix.
//
// # Decisions
//
// [Guard.Admit] refuses a connection whose key is blocked, that arrives faster than the key's token
// bucket allows (2/s, burst 20), or that would push the number of handshakes in flight over the cap
// (256), over the cap of its subnet (16 per IPv4 /24 or IPv6 /48), or into the share reserved for
// known peers (64 of the 256). Known peers are addresses that completed a handshake within the
// last 24 hours and those marked with [Guard.AddKnown] (the peers a node dials); they are not
// counted per subnet, so however many addresses hold the other slots, a known peer gets one. A
// connection from an address not known admitted while more than half the slots are taken gets a
// 1 s deadline instead of 5 s ([Ticket.Deadline]), so slots held by connections that send
// nothing turn over quickly. Refusals for load are logged once per burst. A refusal for rate or
// load is not a block. A key is blocked when it fails authentication 5 times within 10 minutes,
// or when it opens more than 600 connections in an hour that do not end in a successful
// handshake (a warning is logged once per hour from 80 on). Blocks last 1 h, then 6 h,
// then 24 h for each later block; a key's block count is forgotten 7 days after its last block
// ended. A successful handshake clears the key's failures. Addresses in the never-block list are
// never blocked, rate limited or refused. Loopback addresses (127.0.0.0/8, ::1) are never blocked
// unless [Config.BlockLoopback] is set, so an operator's mistyped command on the node's machine
// cannot lock the operator out; they are still rate limited and take handshake slots. Every
// value is configurable (see [Config]).
//
// # Guarantees
//
//   - A [Guard] is safe for concurrent use and starts no goroutines; its clock is [Config.Now].
//   - Admit and [Ticket.Failed] do no I/O unless they create a block, which is saved through
//     [Store] before they return (blocks are rare, and an unsaved block would not survive a
//     restart). Everything else works in memory under one mutex: Admit plus Succeeded takes
//     well under a microsecond.
//   - Memory is bounded: a key with no recent activity is forgotten after an hour, and at most
//     [Config.MaxKeys] keys are tracked (the least recently seen key with no handshake in flight
//     is forgotten first). Blocks are kept apart from this bound and are never dropped early.
//   - Blocks survive restarts when a [Store] is given. A stored state that cannot be decoded is
//     reported (logged and counted) and the guard starts with no blocks rather than failing.
//
// # Caveats
//
// The guard sees only what the caller reports: the caller must bound the handshake (see
// [Ticket.Deadline]) and end every ticket. Forgetting keys under memory pressure also forgets
// their recent failures, so an attacker with very many addresses (an IPv6 /40 holds 16 million
// /64s) may reset its own failure count; the /48 escalation, the handshake cap and the rate limits
// bound what that gains.
package ipguard
