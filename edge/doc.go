// Package edge is the edge role of dt: a dt node that follows the network's current deploy into
// its blob store, switches the site it serves atomically once every blob of a new deploy is on
// disk, reports itself in heartbeats, and serves visitors.
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
