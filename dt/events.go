package dt

import (
	"context"
	"encoding/json"
	"sync"
)

// EventType says what happened.
type EventType int

// The events of the original node-distributed-table.
const (
	// EventStarted fires once, first, when the node has loaded its state. An EventObjectAdded for
	// every object it holds from an earlier run follows; objects of the network that it lacks
	// follow as the sync brings them, each as an EventObjectAdded too.
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
	// object concerned (if any) for EventError.
	Object json.RawMessage
	// From is the node that sent a message.
	From NodeID
	// Err and Origin describe an EventError: what failed and where (an operation such as
	// "add_object", or "peer <addr>").
	Err    error
	Origin string
}

// eventQueue delivers events in order through a channel without ever blocking the node: events
// wait in memory until the application reads them. The application must keep reading Events (the
// dt command does); a consumer that stops reading makes the queue grow.
type eventQueue struct {
	mu     sync.Mutex
	items  []Event // guarded by mu
	signal chan struct{}
	out    chan Event
}

func newEventQueue() *eventQueue {
	return &eventQueue{signal: make(chan struct{}, 1), out: make(chan Event)}
}

func (q *eventQueue) push(ev Event) {
	q.mu.Lock()
	q.items = append(q.items, ev)
	q.mu.Unlock()
	select {
	case q.signal <- struct{}{}:
	default:
	}
}

// run moves events to the output channel until ctx ends, then closes it. Events still queued at
// Close are dropped.
func (q *eventQueue) run(ctx context.Context) {
	defer close(q.out)
	for {
		q.mu.Lock()
		batch := q.items
		q.items = nil
		q.mu.Unlock()
		for _, ev := range batch {
			select {
			case q.out <- ev:
			case <-ctx.Done():
				return
			}
		}
		if len(batch) > 0 {
			continue
		}
		select {
		case <-q.signal:
		case <-ctx.Done():
			return
		}
	}
}
