package dt

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
)

// Event delivery. Every consumer of events is a subscription: the handlers of Config.Events share
// one made at Open, and Node.Subscribe and Node.Events make others. Each subscription has its own
// queue and goroutine, so a slow consumer delays only itself; publishing an event only appends it
// to the queues, so the node never waits for a consumer.
//
// A body in the blob store (over InlineBodyMax) is not copied into the queues: its event carries
// the body's hash and pins the blob, and the body is read when the event is delivered. A blob that
// no record names any more while a delivery is queued is kept (an orphan) until the last pin goes,
// then deleted by the applier.

// eventBus holds a node's subscriptions.
type eventBus struct {
	mu     sync.Mutex
	subs   map[*Subscription]struct{} // guarded by mu
	closed bool                       // guarded by mu: the node is closing; no new subscriptions
	wg     sync.WaitGroup             // the subscriptions' goroutines
}

// queued is one event waiting in a subscription's queue.
type queued struct {
	ev Event
	// byRef marks an object event whose body is the blob blob, read at delivery; the event holds
	// a pin on the blob until then.
	byRef bool
	blob  [32]byte
}

// Subscription is one consumer of a node's events, made by Node.Subscribe. Its handler is called
// on the subscription's own goroutine, one event at a time, in the order the events happened:
// EventStarted, then an EventObjectAdded per object held when the subscription began, then every
// later event. Object events are never dropped; messages and errors beyond Config.EventBuffer
// queued are (see there).
type Subscription struct {
	n      *Node
	h      EventHandler
	signal chan struct{} // a non-blocking wake of the goroutine: the queue grew
	stop   chan struct{} // closed by Close
	done   chan struct{} // closed when the goroutine has ended
	onStop func()        // run by the goroutine as it ends; may be nil
	once   sync.Once

	mu     sync.Mutex
	queue  []queued // guarded by mu
	early  []queued // guarded by mu: messages and errors published before the listing
	listed bool     // guarded by mu: the applier queued EventStarted and the objects held
	gone   bool     // guarded by mu: the goroutine ended; nothing more is queued
}

// Subscribe calls h for every event of the node from now on, on a goroutine of the subscription:
// first EventStarted and an EventObjectAdded for every object the table holds at this moment
// (listed by the applier, so no change slips between the listing and the events that follow),
// then every later change, message and error in order. Messages and errors published while the
// listing is taken come after it. A consumer built on an open node thus needs no buffering of
// its own.
//
// Close the subscription to stop it; Node.Close stops every subscription. Subscribe returns
// ErrClosed once the node is closing. The node never waits for h, but Close waits for a call of
// h in progress, so h must return and must not close its own subscription or the node.
func (n *Node) Subscribe(h EventHandler) (*Subscription, error) {
	return n.subscribe(func(<-chan struct{}) EventHandler { return h }, nil)
}

// subscribe registers a subscription whose handler mk builds from its stop channel, and asks
// the applier for its listing. onStop runs when its goroutine ends, or at once when the node is
// closing.
func (n *Node) subscribe(mk func(stop <-chan struct{}) EventHandler, onStop func()) (*Subscription, error) {
	s := &Subscription{n: n, signal: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}), onStop: onStop}
	s.h = mk(s.stop)
	b := &n.bus
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		if onStop != nil {
			onStop()
		}
		return nil, ErrClosed
	}
	b.subs[s] = struct{}{}
	b.wg.Go(s.run)
	b.mu.Unlock()
	if err := n.submit(context.Background(), applyOp{subscribe: s}); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Close stops the subscription and waits for its goroutine: the handler is not called after
// Close returns, and events still queued are dropped. It is safe to call more than once, but not
// from the subscription's own handler.
func (s *Subscription) Close() {
	s.once.Do(func() { close(s.stop) })
	<-s.done
}

func (s *Subscription) wake() {
	select {
	case s.signal <- struct{}{}:
	default:
	}
}

// run delivers the queue until Close.
func (s *Subscription) run() {
	defer close(s.done)
	defer s.finish()
	for {
		s.mu.Lock()
		batch := s.queue
		s.queue = nil
		s.mu.Unlock()
		for i, q := range batch {
			select {
			case <-s.stop:
				s.n.releaseAll(batch[i:])
				return
			default:
			}
			s.deliver(q)
		}
		if len(batch) > 0 {
			continue
		}
		select {
		case <-s.signal:
		case <-s.stop:
			return
		}
	}
}

// finish leaves the bus, so nothing more is queued, then releases what is still queued.
func (s *Subscription) finish() {
	b := &s.n.bus
	b.mu.Lock()
	delete(b.subs, s)
	b.mu.Unlock()
	s.mu.Lock()
	left := append(s.queue, s.early...)
	s.queue, s.early = nil, nil
	s.gone = true
	s.mu.Unlock()
	s.n.releaseAll(left)
	if s.onStop != nil {
		s.onStop()
	}
}

// deliver hands one event to the handler, reading a body passed by reference first.
func (s *Subscription) deliver(q queued) {
	if q.byRef {
		body, err := s.n.store.blobBody(q.blob)
		s.n.pins.unpin(q.blob)
		// A removed body that cannot be read is passed as nil, silently, as a lazy node's are;
		// an added one that cannot be read is an error the application should see.
		if err != nil && !s.n.lazyMiss(err) && q.ev.Type == EventObjectAdded {
			err = fmt.Errorf("dt: read object %s: %w", q.ev.Key, err)
			s.n.log.Error("Event body unreadable", slog.Any("err", err))
			s.n.metrics.errors.Inc()
			s.h.HandleEvent(Event{Type: EventError, Err: err, Origin: "store"})
		}
		q.ev.Object = body
	}
	s.h.HandleEvent(q.ev)
}

// offer queues an event. Messages and errors are dropped when EventBuffer are queued already;
// object events are always queued (the caller holds their pin), once the listing is.
func (s *Subscription) offer(q queued) {
	droppable := q.ev.Type == EventMessageReceived || q.ev.Type == EventError
	limit := s.n.cfg.EventBuffer
	s.mu.Lock()
	switch {
	case !s.listed && !droppable:
		// Object events before the listing are part of it.
		s.mu.Unlock()
		s.n.releaseAll([]queued{q})
		return
	case !s.listed && len(s.early) >= limit, s.listed && droppable && len(s.queue) >= limit:
		s.mu.Unlock()
		s.n.metrics.eventsDropped.WithLabelValues(q.ev.Type.String()).Inc()
		s.n.eventDropLog.Hit(context.Background(), slog.String("type", q.ev.Type.String()), slog.Int("buffer", limit))
		return
	case !s.listed:
		s.early = append(s.early, q)
	default:
		s.queue = append(s.queue, q)
	}
	s.mu.Unlock()
	s.wake()
}

// setListing queues the subscription's first events, ahead of the messages and errors published
// while they were listed, and lets object events through from now on.
func (s *Subscription) setListing(first []queued) {
	s.mu.Lock()
	if s.gone { // closed before the applier got to it
		s.mu.Unlock()
		s.n.releaseAll(first)
		return
	}
	s.queue = append(append(first, s.queue...), s.early...)
	s.early = nil
	s.listed = true
	s.mu.Unlock()
	s.wake()
}

// publish queues a message or error event for every subscription.
func (n *Node) publish(ev Event) {
	n.bus.mu.Lock()
	defer n.bus.mu.Unlock()
	for s := range n.bus.subs {
		s.offer(queued{ev: ev})
	}
}

// publishObject queues an object event for every listed subscription. With byRef the body is the
// blob hash, pinned for each subscription until delivered. Called on the applier only.
func (n *Node) publishObject(ev Event, byRef bool, hash [32]byte) {
	n.bus.mu.Lock()
	defer n.bus.mu.Unlock()
	for s := range n.bus.subs {
		if byRef {
			n.pins.pin(hash)
		}
		s.offer(queued{ev: ev, byRef: byRef, blob: hash})
	}
}

// hasSubscribers reports whether object events have anyone to go to.
func (n *Node) hasSubscribers() bool {
	n.bus.mu.Lock()
	defer n.bus.mu.Unlock()
	return len(n.bus.subs) > 0
}

// list queues EventStarted and an EventObjectAdded per object held, in log order, for a new
// subscription. It runs on the applier, after a batch is committed and its events published, so
// the subscription sees each change exactly once: in the listing or as it happens.
func (n *Node) list(s *Subscription) {
	first := []queued{{ev: Event{Type: EventStarted}}}
	var after uint64
	for {
		entries, err := n.store.readLog(after, 512)
		if err != nil {
			n.emitError(fmt.Errorf("dt: list objects: %w", err), "store", nil)
			break
		}
		if len(entries) == 0 {
			break
		}
		for _, e := range entries {
			after = e.seq
			if e.rec.Kind != KindPut {
				continue
			}
			q := queued{ev: Event{Type: EventObjectAdded, Key: e.rec.Key, Object: e.body}}
			if e.body == nil {
				q.byRef, q.blob = true, e.rec.Hash
				n.pins.pin(q.blob)
			}
			first = append(first, q)
		}
	}
	s.setListing(first)
}

// closeAll stops every subscription and waits for their goroutines; no new ones may start.
func (b *eventBus) closeAll() {
	b.mu.Lock()
	b.closed = true
	subs := make([]*Subscription, 0, len(b.subs))
	for s := range b.subs {
		subs = append(subs, s)
	}
	b.mu.Unlock()
	for _, s := range subs {
		s.Close()
	}
	b.wg.Wait()
}

// releaseAll drops the pins of events that will not be delivered.
func (n *Node) releaseAll(qs []queued) {
	for _, q := range qs {
		if q.byRef {
			n.pins.unpin(q.blob)
		}
	}
}

// blobPins counts the queued deliveries of each blob-store body, so that a body removed or
// replaced before its event is delivered is still there to read.
type blobPins struct {
	mu      sync.Mutex
	count   map[[32]byte]int      // guarded by mu: queued deliveries per blob
	orphans map[[32]byte]struct{} // guarded by mu: blobs no record names, kept for a delivery
	wake    chan struct{}         // capacity 1: tells the applier an orphan lost its last pin
}

func newBlobPins() *blobPins {
	return &blobPins{count: map[[32]byte]int{}, orphans: map[[32]byte]struct{}{}, wake: make(chan struct{}, 1)}
}

func (p *blobPins) pin(h [32]byte) {
	p.mu.Lock()
	p.count[h]++
	p.mu.Unlock()
}

func (p *blobPins) unpin(h [32]byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.count[h]--; p.count[h] > 0 {
		return
	}
	delete(p.count, h)
	if _, ok := p.orphans[h]; ok {
		select {
		case p.wake <- struct{}{}:
		default:
		}
	}
}

// keep reports whether an unreferenced blob has deliveries queued; if so it is remembered as an
// orphan, for sweepOrphans to delete later.
func (p *blobPins) keep(h [32]byte) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.count[h] == 0 {
		return false
	}
	p.orphans[h] = struct{}{}
	return true
}

// released returns, and forgets, the orphans no delivery waits for any more.
func (p *blobPins) released() [][32]byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out [][32]byte
	for h := range p.orphans {
		if p.count[h] == 0 {
			out = append(out, h)
			delete(p.orphans, h)
		}
	}
	return out
}

// orphaned reports how many blobs are kept only for queued deliveries.
func (p *blobPins) orphaned() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.orphans)
}

// Events returns a channel of the node's events: a subscription (see Subscribe) made on the
// first call, whose handler sends each event on the channel. Every call returns the same
// channel. It begins, as every subscription does, with EventStarted and the objects held at the
// first call; messages and errors before that call are not on it, so call it right after Open
// (not in the goroutine that reads it) when they matter. The channel is closed after Close. Reading it slowly delays only it: object events wait in memory until read, messages
// and errors beyond Config.EventBuffer are dropped. A consumer that stops reading holds memory
// for every later change of the table, so one that may stop should use Subscribe and Close.
func (n *Node) Events() <-chan Event {
	n.eventsOnce.Do(func() {
		out := make(chan Event)
		n.eventsOut = out
		// On a closing node subscribe fails and closes the channel at once, as Close would.
		_, _ = n.subscribe(func(stop <-chan struct{}) EventHandler {
			return EventHandlerFunc(func(ev Event) {
				select {
				case out <- ev:
				case <-stop:
				}
			})
		}, func() { close(out) })
	})
	return n.eventsOut
}
