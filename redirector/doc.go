// Package redirector answers each visitor of a dt site with a redirect to the nearest edge that
// is alive and serves the network's current deploy: the part of `dt redirector` that users point
// DNS at.
//
// The choice is Select, a pure function of the edges (as package heartbeat's Tracker sees them),
// the client (its address and, when known, its GeoIP record), the current deploy id and the
// time. It returns the pick together with every eligible edge's score and every other edge's
// reason for exclusion, so the explain endpoint and the tests can show why a visitor went where.
// GeoDB reads a MaxMind-format database (GeoLite2-City, GeoIP2-City, DB-IP lite) and reloads it
// without interrupting lookups; ClientIP finds the visitor's address behind trusted proxies;
// Handler turns all of it into HTTP.
//
// Node is the whole role, as `dt redirector` runs it: Config names the node, the visitor
// listeners and certificates, GeoIP, the redirect code, the trusted proxies and the connection
// caps; Run opens the node on package internal/nodehost, follows its events with a Service,
// serves visitors and the admin routes (/explain and the dashboard), and returns once everything
// it started has stopped.
//
// # Guarantees
//
//   - A visitor is only ever sent to an eligible edge: alive, heartbeat fresh, synced to the
//     current deploy, not draining, with a valid certificate when its URL is https, reachable
//     over the client's IP family, not disabled by configuration. When no edge is eligible the
//     answer is 503 with Retry-After, never a guess among ineligible edges.
//   - Without GeoIP data for a client, the choice is a configured default location or a weighted
//     draw among all eligible edges; a missing location is never read as the point (0, 0).
//   - Every redirect carries Cache-Control: private, no-store, whatever its status code, so no
//     browser or shared cache pins a visitor to an edge that may later fail.
//   - ACME HTTP-01 challenge paths (/.well-known/acme-challenge/) are never redirected.
//   - X-Forwarded-For and Forwarded are read only from configured trusted proxies, and only up
//     to the right-most address those proxies did not vouch for.
//   - A GeoIP database that fails to load never replaces a working one; lookups never observe a
//     half-loaded database.
//
// # Caveats
//
// The redirector sees one address per visitor, so a dual-stack visitor that arrives over IPv6 is
// only sent to IPv6-capable edges. A forwarded address that a client forged before reaching a
// trusted proxy that does not write the header read here (see ClientIP) can move that client to
// another edge, nothing more: every edge serves the same deploy and is reachable directly anyway.
package redirector
