package dt

import (
	"encoding/json"
)

// EventType says what happened.
type EventType int

// The events of the original node-distributed-table.
const (
	// EventStarted comes first on every subscription (Config.Events, Node.Subscribe,
	// Node.Events). An EventObjectAdded for every object the node holds when the subscription
	// begins follows (for Config.Events: those held from an earlier run); objects of the network
	// that it lacks follow as the sync brings them, each as an EventObjectAdded too.
	EventStarted EventType = iota + 1
	// EventObjectAdded fires when an object enters the table (Key and Object are set).
	EventObjectAdded
	// EventObjectRemoved fires when an object leaves it, whoever removed it and however the node
	// learnt of it (a live record, a reconnect, a reconciliation). Key and Object are set.
	EventObjectRemoved
	// EventMessageReceived fires for each message sent by another node (From and Object are set).
	EventMessageReceived
	// EventError reports a problem the application may want to see (Err, Origin; Object when an
	// object is concerned). The node keeps running.
	EventError
)

func (t EventType) String() string {
	switch t {
	case EventStarted:
		return "started"
	case EventObjectAdded:
		return "object_added"
	case EventObjectRemoved:
		return "object_removed"
	case EventMessageReceived:
		return "message_received"
	case EventError:
		return "error"
	}
	return "unknown"
}

// Event is one thing that happened to a node.
type Event struct {
	Type EventType
	// Key is the object id (or the record key) of object events.
	Key string
	// Object is the object's JSON for object events, the message for EventMessageReceived, and the
	// object concerned (if any) for EventError. It is nil for an object event of a body a node
	// with Config.LazyBodies does not hold. Handlers must not modify it.
	Object json.RawMessage
	// From is the node that sent a message.
	From NodeID
	// Err and Origin describe an EventError: what failed and where (an operation such as
	// "add_object", or "peer <addr>").
	Err    error
	Origin string
}

// EventHandler receives a node's events: through Config.Events, registered before the node
// starts, or through Node.Subscribe. edge.Node, redirector.Service, web.History,
// dns/server.Store and dns/resolve.Responder are handlers.
type EventHandler interface {
	// HandleEvent is called for each event in order, never concurrently for one registration.
	// While it runs, later events of that registration wait (see Config.EventBuffer); the node
	// itself never waits for it.
	HandleEvent(Event)
}

// EventHandlerFunc adapts a function to an EventHandler.
type EventHandlerFunc func(Event)

// HandleEvent calls f(ev).
func (f EventHandlerFunc) HandleEvent(ev Event) { f(ev) }
