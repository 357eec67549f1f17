// Package edge is the edge role of dt: a dt node that follows the current deploy of every site of
// the network into its blob store, switches a site atomically once every blob of its new deploy is
// on disk, reports itself in heartbeats, and serves visitors.
//
// # Sites
//
// The site of a request is the one whose hosts claim its Host (":authority" over HTTP/2) and,
// over TLS, its server name too (package site's Hosts: an exact host, then a one-label
// wildcard, then the implicit default site). A host no site claims, or a server name of another
// site than the Host's, gets 421 Misdirected Request and no content of any site. A network with
// only site/current (built by an earlier release) has the one implicit default site, served on
// every host as before. Each site's _redirects, _headers, 404 pages and settings are its deploy's
// and apply to it alone. Heartbeats keep Deploy and Synced for the default site and report the
// other sites compactly (heartbeat.Heartbeat.SetSites).
//
// Node owns the whole role: New checks a Config, and Run opens the node (through package
// nodehost, configured by Config.Host: the admin listener, the event log, readiness), the blob
// store, the certificates and the listeners, serves until its context ends, then drains (health
// 503 and a draining heartbeat, DrainWait more of serving, requests in flight finished) and
// returns once everything has stopped. `dt edge`, `dt demo`, the benchmarks and the end-to-end
// tests all run edges this way.
//
// The HTTP semantics of a deploy's files (conditional and range requests, content negotiation,
// _redirects and _headers rules) are package static's; choosing and running the HTTP servers
// (internal/h1, internal/h2 or net/http, TLS, timeouts and connection caps) is package
// internal/httpserve's. The edge adds its own route before the site: the health endpoint
// (HealthPath) that redirectors probe.
package edge
