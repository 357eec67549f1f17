package dt

import (
	"crypto/ed25519"
	"encoding/binary"
	"fmt"
	"sync"
	"time"
)

// Message is a flooded message: signed by the node that sent it, forwarded by every node to every
// link but the one it came on, delivered at most once per node.
type Message struct {
	ID      [16]byte          // random; duplicates are dropped for Config.MessageWindow
	Origin  ed25519.PublicKey // the sending node's identity key
	Time    int64             // Unix milliseconds at the origin
	Hops    uint8             // links crossed so far; not signed (relays increment it)
	Payload []byte            // JSON
	Sig     []byte            // Ed25519 by Origin over signedBytes
}

func (m *Message) signedBytes(table [16]byte, epoch uint32) []byte {
	b := make([]byte, 0, 96+len(m.Payload))
	b = append(b, "dt message v1\x00"...)
	b = append(b, table[:]...)
	b = binary.BigEndian.AppendUint32(b, epoch)
	b = append(b, m.ID[:]...)
	b = append(b, m.Origin...)
	b = binary.BigEndian.AppendUint64(b, uint64(m.Time))
	return append(b, m.Payload...)
}

func (m *Message) marshal() []byte {
	b := make([]byte, 0, 128+len(m.Payload))
	b = append(b, m.ID[:]...)
	b = append(b, m.Origin...)
	b = binary.BigEndian.AppendUint64(b, uint64(m.Time))
	b = append(b, m.Hops)
	b = appendLenBytes(b, m.Payload)
	return append(b, m.Sig...)
}

func parseMessage(b []byte, maxPayload int) (*Message, error) {
	d := decoder{b: b}
	m := &Message{}
	copy(m.ID[:], d.bytes(16))
	m.Origin = ed25519.PublicKey(d.bytes(ed25519.PublicKeySize))
	m.Time = int64(d.uint64())
	m.Hops = d.byte()
	m.Payload = d.lenBytes(uint64(maxPayload))
	m.Sig = d.bytes(ed25519.SignatureSize)
	if err := d.finish("message"); err != nil {
		return nil, err
	}
	return m, nil
}

// seenCache remembers message ids for at least window: two maps, rotated every window, so an id is
// remembered between one and two windows. The maps hold at most max ids together: when the
// current map reaches max/2 it is rotated early, and the previous map's ids are forgotten before
// their window ends. That is the eviction: the oldest half goes. A message whose id was forgotten
// early and that arrives again is delivered and forwarded once more, but only within
// MessageWindow of its origin's clock (older messages are dropped by checkWindow, whatever the
// cache holds), only as its origin's and its neighbour's budgets allow, and never past MaxHops,
// so forgetting cannot start a replay storm.
type seenCache struct {
	mu      sync.Mutex
	window  time.Duration
	max     int
	rotated time.Time
	cur     map[[16]byte]struct{}
	prev    map[[16]byte]struct{}
	early   uint64 // rotations forced by max
}

func newSeenCache(window time.Duration, max int, now time.Time) *seenCache {
	return &seenCache{window: window, max: max, rotated: now, cur: map[[16]byte]struct{}{}, prev: map[[16]byte]struct{}{}}
}

// add records id and reports whether it was new.
func (c *seenCache) add(id [16]byte, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rotateLocked(now)
	if c.hasLocked(id) {
		return false
	}
	if len(c.cur) >= c.max/2 {
		c.prev, c.cur = c.cur, make(map[[16]byte]struct{})
		c.rotated = now
		c.early++
	}
	c.cur[id] = struct{}{}
	return true
}

// contains reports whether id is remembered, without recording it.
func (c *seenCache) contains(id [16]byte, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rotateLocked(now)
	return c.hasLocked(id)
}

func (c *seenCache) rotateLocked(now time.Time) {
	if now.Sub(c.rotated) >= c.window {
		c.prev, c.cur = c.cur, make(map[[16]byte]struct{}, len(c.cur))
		c.rotated = now
	}
}

func (c *seenCache) hasLocked(id [16]byte) bool {
	if _, ok := c.cur[id]; ok {
		return true
	}
	_, ok := c.prev[id]
	return ok
}

// size returns the ids remembered and the rotations forced by the bound.
func (c *seenCache) size() (ids int, early uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.cur) + len(c.prev), c.early
}

// checkWindow rejects messages whose timestamp is outside the window around now: older ones may
// have left the seen cache (a replay), newer ones come from a broken clock.
func checkWindow(t int64, now time.Time, window time.Duration) error {
	d := now.Sub(time.UnixMilli(t))
	if d > window || d < -window {
		return fmt.Errorf("%w: message time %s is %s from the local clock", ErrMalformed, time.UnixMilli(t).UTC().Format(time.RFC3339), d.Round(time.Second))
	}
	return nil
}
