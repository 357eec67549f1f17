// Package edgeset knows a network's edges and chooses among them: it follows the edges'
// heartbeats and the network's current deploy through a dt node (Set), decides which edges may
// take visitors, and picks the nearest of those for a client (Select), with the reasons for every
// edge it did not pick (Explain). It speaks no protocol to visitors: the redirector turns a choice
// into an HTTP redirect, GeoDNS (package dns/geo) into A and AAAA answers, and the dashboard
// (package web) shows the Set's Status.
//
// # Eligibility
//
// An edge is eligible when it is alive (package heartbeat's Tracker), its last heartbeat is fresh,
// it serves the current deploy in full, it is not draining, it holds a valid certificate for the
// name visitors will use when its URL is https (by its heartbeat's report of names, see
// SelectOptions.CertName; by cert_expiry for an edge of an earlier release), it is reachable over the client's IP family, and its configured weight is not
// zero. Select never picks an ineligible edge, however few eligible ones remain.
//
// # Sites
//
// A network serves many sites (package site: records under "sites/<name>", each site's current
// deploy under its own key, the site "default" under "site/current"). A Set follows them all
// (View, Sites) and the per-site part of every heartbeat (SiteReport, from the fields
// heartbeat.Decode checks: the sites an edge lags for, bounded by heartbeat.MaxLagging, and
// digests of what it serves and of the current deploys it knows). SelectSite chooses for one
// site: for "default" by the edges' Deploy and Synced as Select always did, which edges of every
// release report; for any other site only among edges that heartbeat.Heartbeat.ServesSite says
// serve its current deploy as the Set knows it (Sites.CurrentsDigest), others being excluded
// with ExcludeSiteLagging: an edge whose last heartbeat was built before it heard of the site's
// current deploy is never chosen for it, however late that heartbeat arrives. An edge of a
// release before sites serves "default" alone. Sites.Match finds the site of a Host.
//
// # Liveness
//
// Every edge is judged by the heartbeat interval it announces in its heartbeats
// (heartbeat.Heartbeat.IntervalMS): it is suspected after heartbeat.DefaultSuspectBeats of its
// own intervals of silence and leaves the choice after SelectOptions.MaxAgeBeats of them, so
// receivers need no setting that matches the edges'. An edge that announces no interval (one of
// an earlier release) is judged by Config.HeartbeatInterval and SelectOptions.MaxAge instead.
//
// # Choice
//
// Eligible edges are ranked by the client's place: same country first, then same continent,
// then elsewhere; within the best tier, when the client's location is known, by great-circle
// distance, keeping the near band (the nearest × NearFactor, at least NearFloorKm, widened by the
// client's GeoIP accuracy radius). One of the near edges is drawn in proportion to its weight,
// the configured weight divided by one plus its reported CPU load. Without any GeoIP data for a
// client the choice is SelectOptions.DefaultLocation's or a weighted draw among all eligible
// edges; a missing location is never read as the point (0, 0).
package edgeset
