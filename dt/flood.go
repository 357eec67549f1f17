package dt

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"

	"golang.org/x/time/rate"
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

// receiveMessage handles a flooded message from a link. Duplicates are dropped before any other
// work; the signature is checked before the message is delivered or forwarded, so a forged message
// goes no further than the node it was first sent to.
func (n *Node) receiveMessage(from *link, payload []byte) error {
	m, err := parseMessage(payload, n.cfg.MaxMessageSize)
	if err != nil {
		return err
	}
	now := n.cfg.Now()
	if err := checkWindow(m.Time, now, n.cfg.MessageWindow); err != nil {
		n.metrics.messagesDropped.WithLabelValues("window").Inc()
		n.emitError(fmt.Errorf("dt: message from %s: %w", NodeIDOf(m.Origin).Short(), err), "peer "+from.remote.String(), m.Payload)
		return nil
	}
	if !n.seen.add(m.ID, now) {
		n.metrics.messagesDropped.WithLabelValues("duplicate").Inc()
		return nil
	}
	if !ed25519.Verify(m.Origin, m.signedBytes(n.table, n.cfg.Epoch), m.Sig) {
		return fmt.Errorf("%w: message signature", ErrForged)
	}
	origin := NodeIDOf(m.Origin)
	if origin == n.id {
		return nil // our own message, back through another path
	}
	if !n.allowMessage(origin) {
		n.metrics.messagesDropped.WithLabelValues("rate").Inc()
		n.emitError(fmt.Errorf("dt: messages from %s over the rate limit: dropped", origin.Short()), "peer "+from.remote.String(), nil)
		return nil
	}
	n.metrics.messagesReceived.Inc()
	n.events.push(Event{Type: EventMessageReceived, From: origin, Object: json.RawMessage(m.Payload)})
	if int(m.Hops)+1 < n.cfg.MaxHops {
		m.Hops++
		n.forward(m, from)
	}
	return nil
}

// maxLimiters bounds the per-origin rate limiters kept; past it they are all forgotten (a fresh
// limiter starts with a full burst, so this only ever errs on the side of delivering).
const maxLimiters = 10000

func (n *Node) allowMessage(origin NodeID) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	lim := n.limiters[origin]
	if lim == nil {
		if len(n.limiters) >= maxLimiters {
			n.limiters = map[NodeID]*rate.Limiter{}
		}
		lim = rate.NewLimiter(n.cfg.MessageRate, n.cfg.MessageBurst)
		n.limiters[origin] = lim
	}
	return lim.AllowN(n.cfg.Now(), 1)
}
