// Package server answers DNS for the zones a dt table holds: an authoritative server whose data
// comes from the table's events, so that every node of the network answers alike.
//
// Store follows the node's events (HandleEvent): each RRset record of package zone that enters
// the table is served, each one that leaves stops being served, and a node that was offline
// catches up through the table's own sync. Handler answers from it over UDP and TCP (Serve, on
// the Listeners of Listen).
//
// # What it answers
//
//   - Authoritative answers (AA) for names in zones whose apex SOA the store holds; REFUSED for
//     any other name, since it is not a resolver; NOTIMP for opcodes other than QUERY; REFUSED
//     for AXFR and IXFR (zones replicate through dt).
//   - NXDOMAIN and NODATA with the SOA for negative caching (RFC 2308 §3); empty non-terminals
//     are NODATA (RFC 8020). CNAMEs are followed within the zones served (at most 8 links);
//     wildcards answer for names that do not exist (RFC 4592); a name at or below a delegation
//     gets a referral with its glue.
//   - A Synthesizer (the CDN zone, package dns/synth) answers the names of its zone that no
//     published zone of the same apex holds; Challenges answers TXT queries for
//     "_acme-challenge.<domain>" in every zone served. Answers keep the query name's case (0x20).
//   - ANY over UDP gets the one HINFO of RFC 8482 rather than every set; over TCP, every set.
//   - EDNS0 (RFC 6891): version 0, BADVERS otherwise; UDP answers are truncated (TC) to the
//     client's buffer size, never above MaxUDPSize (1232 by default). EDNS Client Subnet (RFC
//     7871) tells a Dynamic name (GeoDNS) where the client is, and is echoed with the scope the
//     answer holds for (0 for static data).
//
// # Caveats
//
// No DNSSEC, no zone transfers, no NOTIFY, no dynamic updates: the table is how zones change.
// Answers are not cached or precompiled: each query walks the store under a read lock.
package server
