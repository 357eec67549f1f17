// Package edge is the edge role of dt: a dt node that follows the network's current deploy into
// its blob store, switches the site it serves atomically once every blob of a new deploy is on
// disk, reports itself in heartbeats, and serves visitors.
//
// The HTTP semantics of a deploy's files (conditional and range requests, content negotiation,
// _redirects and _headers rules) are package static's; choosing and running the HTTP servers
// (internal/h1, internal/h2 or net/http, TLS, timeouts and connection caps) is package
// internal/httpserve's. The edge adds its own routes before the site: the health endpoint
// (HealthPath) that redirectors probe, and whatever NodeConfig.Routes registers.
package edge
