// Package web is the status dashboard of a redirector: one page that lists every edge with its
// state, location, deploy, load, heartbeat age and certificate expiry, places the edges on a world
// map, lists the network's sites (each with its hosts, current deploy, the edges serving it and
// the deploys its current pointer named), lists every certificate (the table's and the edges'
// own, each with its issuer, expiry, the edges serving it and its last error, flagged ahead of
// expiry), lists the deploys the network keeps, and updates itself live. Its traffic section
// draws a site's requests per edge and bandwidth over a chosen range, the visitors the
// redirectors sent to each edge and why, its status classes, top pages, referrers and countries,
// from GET /api/stats, which the redirector serves beside the Dashboard on its admin listener
// (package trafficseries), and refreshes them every 15 s.
//
// Everything the page needs is embedded in the binary (go:embed): the HTML, the stylesheet, the
// script and the land outline of the map. It loads nothing from elsewhere, and its
// Content-Security-Policy forbids it to.
//
// The Dashboard is an http.Handler meant for the admin listener, beside /status and /metrics:
//
//	GET /               the page
//	GET /static/NAME    its assets
//	GET /api/snapshot   the page's data as JSON (Snapshot)
//	GET /api/events     the same, pushed as Server-Sent Events on every change of an edge's
//	                    state and at least every Config.Tick, so heartbeat ages keep moving
//
// It reads the redirector's view of the edges through EdgeSource (an *edgeset.Set) and the
// deploy history through DeploySource (a *History fed with the redirector node's events). It
// shows what the redirector knows and changes nothing.
//
// The map's land outline is Natural Earth's 1:110m land (public domain), converted once by
// gen_land.go; see map.go.
package web
