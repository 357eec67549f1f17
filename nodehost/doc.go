// Package nodehost runs what every role of dt shares around its dt node: opening the node, the
// Prometheus registry, the admin listener (/status, /metrics, /debug/pprof/ and the routes a role
// or the process adds), the log of every event, the handing of events to the role's consumers,
// the report of the bound addresses once everything serves, and closing in order.
//
// Its Config is what every role's Config names as its Host field (edge.Config.Host,
// redirector.Config.Host, dns.Config.Host): the dt node, the admin listener, the logger, the
// metrics registry, the build's description and the hooks a process attaches (Opened, Ready).
// A Go program runs a plain node, one that only keeps the table and serves the admin listener,
// with Run and no role:
//
//	err := nodehost.Run(ctx, nodehost.Config{Node: nodeCfg, Admin: "127.0.0.1:9002"},
//		func(*nodehost.Host) (nodehost.Role, error) { return nodehost.Role{}, nil })
//
// A role (an edge, a redirector, a DNS node, or a plain node) opens a Host, builds its parts on
// the open node, subscribes them to its events and calls Run, which returns once everything the
// host started has stopped. Process concerns (signals, a pid file, a ready file, flags) are the
// caller's: the host reports readiness through Config.Ready and nothing else.
//
// # Events
//
// Every consumer subscribed before Run gets every event of the node, from EventStarted on, in
// order, on one goroutine shared by all consumers: consumer i sees an event before consumer i+1
// does, and the next event only after every consumer returned. The host takes one subscription
// of the node's (dt.Node.Events) as it opens it; until Run has its admin listener serving,
// events wait in that subscription's queue (the node never blocks on them), so a consumer built
// on the open node misses nothing. A slow consumer delays the others, never the table; past
// dt.Config.EventBuffer, messages and errors are dropped for it, never object events.
//
// # Shutdown
//
// When Run's context ends and the role's Serve has returned, the admin listener stops first (no
// request sees a closed node), then the node, whose Close ends its event channel, then the
// goroutine that hands events to consumers.
package nodehost
