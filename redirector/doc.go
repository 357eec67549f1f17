// Package redirector answers each visitor of a dt site with a redirect to the nearest edge that
// is alive and serves the network's current deploy: the part of `dt redirector` that users point
// DNS at.
//
// The choice is package edgeset's Select, a pure function of the edges, the client (its address
// and, when known, its GeoIP record from package geoip), the current deploy id and the time; an
// edgeset.Set follows the edges' heartbeats and the current deploy. This package is the HTTP
// around them: ClientIP finds the visitor's address behind trusted proxies, Handler answers with
// the redirect (and Explain with the reasoning, as JSON), Service runs both on a dt node, and
// Frontend makes the visitors' servers.
//
// Node is the whole role, as `dt redirector` runs it: Config names the host (package nodehost:
// the node, the admin listener, the logger), the visitor listeners and certificates, GeoIP, the
// redirect code, the trusted proxies and the connection caps; Run opens the node on package
// nodehost, follows its events with a Service,
// serves visitors and the admin routes (/explain and package web's dashboard), and returns once
// everything it started has stopped.
//
// # Sites
//
// A network serves many sites (package site). The Handler picks the site by the request's Host
// (edgeset.Sites.Match: an exact host, then a one-label wildcard, then the site "default" when
// it exists without a record of its own) and chooses among the edges serving that site's current
// deploy (edgeset.SelectSite); the redirect goes to the chosen edge's public URL with the
// visitor's path and query, as for a single site. A Host no site claims gets 421 Misdirected
// Request. /explain?host=NAME explains the choice for NAME's site, and /status lists the sites
// with the edges serving each. A network built before sites has the one site "default", which
// claims every Host, so it is answered exactly as before.
//
// # Guarantees
//
//   - A visitor is only ever sent to an eligible edge: alive, heartbeat fresh, synced to the
//     current deploy of the site its Host names, not draining, with a valid certificate for the
//     name redirected to when its URL is https, reachable over the client's IP family, not
//     disabled by configuration. While no edge serves the current deploy yet (the moment after a
//     publish, before the edges' heartbeats say they switched, or a deploy whose files have not
//     arrived), the visitor goes to an edge still serving an earlier deploy of the site and
//     eligible otherwise; /explain says "fallback". When there is none either, the answer is
//     503 with Retry-After, never a guess among ineligible edges.
//   - Without GeoIP data for a client, the choice is a configured default location or a weighted
//     draw among all eligible edges; a missing location is never read as the point (0, 0).
//   - Every redirect carries Cache-Control: private, no-store, whatever its status code, so no
//     browser or shared cache pins a visitor to an edge that may later fail.
//   - ACME HTTP-01 challenge paths (/.well-known/acme-challenge/) are never redirected.
//   - X-Forwarded-For and Forwarded are read only from configured trusted proxies, and only up
//     to the right-most address those proxies did not vouch for.
//
// # Caveats
//
// The redirector sees one address per visitor, so a dual-stack visitor that arrives over IPv6 is
// only sent to IPv6-capable edges. A forwarded address that a client forged before reaching a
// trusted proxy that does not write the header read here (see ClientIP) can move that client to
// another edge, nothing more: every edge serves the same deploy and is reachable directly anyway.
package redirector
