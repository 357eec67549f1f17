package dt

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
)

// SendMessage floods a message to every node of the network that is online. Any node may send.
// The message is signed with the node's identity, so receivers know which node sent it (Event.From)
// and relays cannot alter it. It returns once the message is queued on every link; it is not
// delivered to the sending node itself.
func (n *Node) SendMessage(ctx context.Context, v any) error {
	payload, err := CanonicalJSON(v)
	if err != nil {
		n.emitError(err, "send_message", nil)
		return err
	}
	if len(payload) > n.cfg.MaxMessageSize {
		err := fmt.Errorf("dt: message of %d bytes: %w (limit %d)", len(payload), ErrTooLarge, n.cfg.MaxMessageSize)
		n.emitError(err, "send_message", payload)
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if n.ctx.Err() != nil {
		return ErrClosed
	}
	random := n.cfg.Random
	if random == nil {
		random = rand.Reader
	}
	m := &Message{Origin: n.identity.Public().(ed25519.PublicKey), Time: n.cfg.Now().UnixMilli(), Payload: payload}
	if _, err := io.ReadFull(random, m.ID[:]); err != nil {
		return fmt.Errorf("dt: message id: %w", err)
	}
	m.Sig = ed25519.Sign(n.identity, m.signedBytes(n.table, n.cfg.Epoch))
	n.seen.add(m.ID, n.cfg.Now())
	n.forward(m, nil)
	n.metrics.messagesSent.Inc()
	return nil
}

// forward queues m on every link but the one it came from.
func (n *Node) forward(m *Message, from *link) {
	frame := appendFrame(nil, frameMessage, m.marshal())
	n.mu.RLock()
	defer n.mu.RUnlock()
	for _, l := range n.links {
		if l != from {
			l.sendMessage(frame)
		}
	}
}

// receiveMessage handles a flooded message from a link. Duplicates are dropped first, then
// messages over a budget (floodLimits.admit); the signature is checked last of all, so that a
// flood costs a hash lookup and a few token buckets per message, not a signature check, and a
// forged message goes no further than the node it was first sent to. An id enters the seen cache
// only once the message is accepted: a copy dropped for a budget may still come through another
// link.
func (n *Node) receiveMessage(from *link, payload []byte) error {
	m, err := parseMessage(payload, n.cfg.MaxMessageSize)
	if err != nil {
		return err
	}
	now := n.cfg.Now()
	origin := NodeIDOf(m.Origin)
	if err := checkWindow(m.Time, now, n.cfg.MessageWindow); err != nil {
		n.dropMessage(from, origin, dropWindow)
		return nil
	}
	if origin == n.id || n.seen.contains(m.ID, now) {
		// Our own message back through another path, or one delivered already.
		n.metrics.messagesDropped.WithLabelValues(string(dropDuplicate)).Inc()
		return nil
	}
	if r := n.flood.admit(from.budget, origin, origin == from.peer, now); r != dropNone {
		n.dropMessage(from, origin, r)
		return nil
	}
	if !ed25519.Verify(m.Origin, m.signedBytes(n.table, n.cfg.Epoch), m.Sig) {
		return fmt.Errorf("%w: message signature", ErrForged)
	}
	if !n.seen.add(m.ID, now) {
		n.metrics.messagesDropped.WithLabelValues(string(dropDuplicate)).Inc()
		return nil
	}
	n.metrics.messagesReceived.Inc()
	n.publish(Event{Type: EventMessageReceived, From: origin, Object: json.RawMessage(m.Payload)})
	if int(m.Hops)+1 < n.cfg.MaxHops {
		m.Hops++
		n.forward(m, from)
	}
	return nil
}
