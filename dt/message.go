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
// remembered between one and two windows and memory stays bounded by the message rate.
type seenCache struct {
	mu      sync.Mutex
	window  time.Duration
	rotated time.Time
	cur     map[[16]byte]struct{}
	prev    map[[16]byte]struct{}
}

func newSeenCache(window time.Duration, now time.Time) *seenCache {
	return &seenCache{window: window, rotated: now, cur: map[[16]byte]struct{}{}, prev: map[[16]byte]struct{}{}}
}

// add records id and reports whether it was new.
func (c *seenCache) add(id [16]byte, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if now.Sub(c.rotated) >= c.window {
		c.prev, c.cur = c.cur, make(map[[16]byte]struct{}, len(c.cur))
		c.rotated = now
	}
	if _, ok := c.cur[id]; ok {
		return false
	}
	if _, ok := c.prev[id]; ok {
		return false
	}
	c.cur[id] = struct{}{}
	return true
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
