// Package trafficseries keeps, on the redirector's disk, the series of the edges' traffic
// statistics (package trafficstats): per site and per edge, one point a minute for a day and one
// an hour for 90 days, and per site and day the top paths, referrers, countries and the sketch
// of unique visitors. It survives restarts (a bbolt file) and prunes itself to those bounds.
//
// # Bounds
//
//   - Minute points older than MinuteRetention and hour points and days older than
//     HourRetention are deleted (at most once a PruneEvery).
//   - At most Config.MaxSites sites are kept; entries of further sites are dropped and counted.
//   - A point takes about 20 bytes of counts; a day's tops at most a few KiB and its visitor
//     sketch at most trafficstats.MaxSketchBytes.
//
// # Caveats
//
// Top paths, referrers and countries are kept per day, not per point: a query returns those of
// the days its range touches. Unique visitors are the union of the day sketches of every edge;
// each edge hashes with a key of its own, so a visitor served by two edges counts twice.
package trafficseries
