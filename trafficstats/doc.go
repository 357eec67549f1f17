// Package trafficstats aggregates an edge's traffic per site and carries it to the rest of the
// network as dt messages of type "stats", one per interval per edge: requests, body bytes,
// status classes, cache validations (304), the most requested paths and referrers, visitors'
// countries and an estimate of unique visitors, without keeping any visitor's address.
//
// # Bounded whatever the traffic
//
//   - Top paths and referrers are counted with the space-saving algorithm (Metwally, Agrawal and
//     El Abbadi, "Efficient Computation of Frequent and Top-k Elements in Data Streams", 2005):
//     TrackedKeys counters per list, of which the MaxTop largest are sent, each with its
//     overestimate bound. Keys are truncated to MaxKeyBytes. A count is at most n/TrackedKeys
//     above the truth (n the site's requests in the interval), and a key more frequent than
//     that is never missed. Once the counters are all taken, a key without one counts first in
//     one of a few hashed filter counters and takes a counter only when that reaches the smallest
//     (filtered space-saving, Homem and Carvalho, 2010): the same bounds, without an eviction per
//     request of a rare path. An edge counts in one shard per core and merges the shards'
//     counters as mergeable summaries (Agarwal et al., 2012), which keeps the same bound.
//   - Countries are at most MaxCountries per site, the rest counted under "other".
//   - Unique visitors are a HyperLogLog sketch (github.com/axiomhq/hyperloglog, precision
//     SketchPrecision: about 1.6 % standard error, at most 4 KiB dense, a few bytes per visitor
//     while sparse) of a keyed hash of the client's address. The key is random, made for each
//     UTC day, held only in memory and replaced at the end of the first interval after the day
//     ends, so a sketch cannot be tested for an address after its day, nor compared across days
//     or edges.
//   - A message holds at most MaxSites sites and MaxSize bytes. Sites that do not fit wait for
//     the next interval's message (each site entry names its own interval); at most MaxBacklog
//     entries wait, the oldest dropped beyond that.
//
// # Caveats
//
// Each edge salts its own sketches, so a visitor served by two edges on one day counts twice in
// their union: redirectors send a visitor to the same nearest edge, which keeps this rare.
// Counts are of responses the site handler wrote (not health probes or ACME challenges).
package trafficstats
