// Package hlc implements a hybrid logical clock: 48 bits of Unix milliseconds and a 16-bit counter
// packed into one uint64, so timestamps compare as integers and stay close to wall time.
//
// A clock never goes backwards: Now returns a value greater than every value it returned or
// observed before, even when the wall clock steps back. This is what lets a master that was
// restarted on a machine with a slow clock still write records that win over its old ones (see
// Kulkarni et al., "Logical Physical Clocks and Consistent Snapshots", 2014).
package hlc

import (
	"sync"
	"time"
)

// Timestamp is a hybrid logical time: the high 48 bits are Unix milliseconds, the low 16 bits a
// counter that orders events within one millisecond.
type Timestamp uint64

// counterBits is the width of the logical counter.
const counterBits = 16

// FromTime returns the smallest timestamp of the millisecond that t falls in.
func FromTime(t time.Time) Timestamp {
	ms := t.UnixMilli()
	if ms < 0 {
		ms = 0
	}
	return Timestamp(uint64(ms) << counterBits)
}

// Time returns the wall-clock part of ts.
func (ts Timestamp) Time() time.Time { return time.UnixMilli(int64(ts >> counterBits)).UTC() }

// Millis returns the wall-clock part of ts in Unix milliseconds.
func (ts Timestamp) Millis() int64 { return int64(ts >> counterBits) }

// Counter returns the logical part of ts.
func (ts Timestamp) Counter() uint16 { return uint16(ts) }

// Clock issues timestamps. It is safe for concurrent use. The zero value is not usable: use New.
type Clock struct {
	now  func() time.Time
	mu   sync.Mutex
	last Timestamp // guarded by mu
}

// New returns a clock reading wall time from now (time.Now when nil) that never issues a timestamp
// at or below floor (the highest timestamp persisted before a restart).
func New(now func() time.Time, floor Timestamp) *Clock {
	if now == nil {
		now = time.Now
	}
	return &Clock{now: now, last: floor}
}

// Now returns a timestamp greater than any previously issued or observed.
func (c *Clock) Now() Timestamp {
	c.mu.Lock()
	defer c.mu.Unlock()
	wall := FromTime(c.now())
	if wall > c.last {
		c.last = wall
	} else {
		// Same millisecond, or the wall clock is behind what we have seen: count up. The counter
		// carries into the millisecond bits on overflow, which keeps the order total.
		c.last++
	}
	return c.last
}

// Observe merges a timestamp seen on a remote record so that later Now calls exceed it.
func (c *Clock) Observe(ts Timestamp) {
	c.mu.Lock()
	if ts > c.last {
		c.last = ts
	}
	c.mu.Unlock()
}

// Last returns the highest timestamp issued or observed.
func (c *Clock) Last() Timestamp {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last
}

// Ahead reports how far ts runs ahead of the local wall clock (zero or negative when it does not).
func (c *Clock) Ahead(ts Timestamp) time.Duration {
	return time.Duration(ts.Millis()-c.now().UnixMilli()) * time.Millisecond
}
