// Package zone turns a zone file into the form dt replicates, and back.
//
// Parse reads standard zone-file syntax (RFC 1035 §5, with $ORIGIN, $TTL and $GENERATE; never
// $INCLUDE) and validates the zone as a whole before anything is sent: one SOA at the apex, NS
// at the apex, every name inside the zone, CNAME alone at its name, no data hidden below a
// delegation, one TTL per RRset. The result is a list of RRsets in canonical form.
//
// In the table each RRset is one keyed record, `dns/<zone>/<owner>/<TYPE>`, whose body (Set's
// JSON) holds the owner, type, TTL and every RDATA in presentation form, sorted. The RRset is
// DNS's own unit of change (RFC 2181 §5), so one record per RRset makes every update of an RRset
// atomic on every node, and a name or type that leaves the zone file is one tombstone. Diff
// compares a parsed zone with what the table holds (Held) and says which keys to write and which
// to delete; Write writes them through a master's node, the SOA last, and Remove takes a whole
// zone off, the SOA first. Listing gives a zone's records back in a zone file's order.
//
// # Caveats
//
// An update that touches several RRsets reaches a node RRset by RRset, in the order the master
// wrote them (the SOA last); a query in between sees some of the new RRsets and some old ones.
// DNSSEC is not supported: zones are not signed, and DNSSEC record types are refused rather than
// served without their proofs.
package zone
