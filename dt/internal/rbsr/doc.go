// Package rbsr finds the difference between two sets of records with range-based set
// reconciliation (Aljoscha Meyer, "Range-Based Set Reconciliation", 2022), speaking the Negentropy
// protocol version 1 wire format (github.com/hoytech/negentropy, docs/negentropy-protocol-v1.md).
//
// dt uses it as the fallback and periodic anti-entropy check of replication: each node builds a
// [Set] of (hybrid logical clock, record id) pairs, one side runs an [Initiator], the other a
// [Responder], and after a few round trips the initiator knows which ids only it has (to push) and
// which only the peer has (to fetch). The cost grows with the number of differences, not with the
// size of the sets: two equal sets of 100,000 items agree after one round trip of a few hundred
// bytes.
//
// # Protocol
//
// Items are ordered by timestamp, then by id bytes. A message is the version byte 0x61 followed by
// ranges that tile the whole (timestamp, id) space in ascending order; each range carries an
// exclusive upper bound and one of three payloads: Skip (nothing to do here), Fingerprint (16 bytes
// summarising the sender's items in the range) or IdList (every id the sender has in it). A side
// that receives a Fingerprint different from its own splits the range into 16 buckets with their
// own fingerprints, or sends its ids when fewer than 32 remain. The initiator settles every IdList
// it receives by comparing ids; the responder answers an IdList with its own. A range's fingerprint
// is the first 16 bytes of SHA-256 over the sum of its ids (little-endian 256-bit integers, mod
// 2^256) followed by the varint count of items.
//
// # Guarantees
//
//   - A [Set] is an immutable snapshot with prefix sums of its ids, so the fingerprint of any range
//     costs two binary searches, one subtraction and one SHA-256. Sets are safe for concurrent use.
//   - Every message is parsed as untrusted input: malformed messages are reported as errors wrapping
//     [ErrMalformed] (or [ErrUnsupportedVersion]) and never panic. Nothing is allocated for a
//     claimed length before it is checked against the bytes actually present, and a message may
//     hold at most [MaxRanges] ranges.
//   - With a frame size limit, no message produced exceeds it; reconciliation then takes more
//     rounds but still completes, because every message settles at least one range.
//   - With honest peers, the have and need lists an [Initiator] reports over a whole run are exactly
//     the two set differences, each id reported once (up to the 2^-128 chance of a fingerprint
//     collision).
//
// # Caveats
//
// The protocol learns ids, not records: the caller fetches and sends the records themselves. Id
// lists carry no timestamps, so a hostile responder can make an initiator report as needed ids it
// already holds (listed in the wrong range) or ids the responder does not hold, and can hide real
// differences; callers check what they fetch against their store. The timestamp 2^64-1 is
// reserved by the protocol as "infinity": [NewSet] drops items that carry it.
package rbsr
