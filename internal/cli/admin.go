package cli

import (
	"github.com/dt-cdn/dt/dt"
)

// nodeStatus is GET /status of a node's admin listener (nodehost.Status) as the load test and
// the tests read it back: every dt.Status field at the top level, the link byte counters, and
// the load test's progress on loadtest nodes.
type nodeStatus struct {
	dt.Status
	// Build is the version of the binary the node runs.
	Build             buildInfo   `json:"build"`
	LinkBytesReceived uint64      `json:"link_bytes_received"`
	LinkBytesSent     uint64      `json:"link_bytes_sent"`
	Load              *loadStatus `json:"load,omitempty"`
	// Redirector is the redirector's view of the edges, on `dt redirector` nodes.
	Redirector any `json:"redirector,omitempty"`
	// Edge is the deploy an edge serves, on `dt edge` nodes.
	Edge any `json:"edge,omitempty"`
}
