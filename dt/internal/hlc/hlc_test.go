package hlc

import (
	"testing"
	"time"
)

func TestNowIsStrictlyIncreasingWhenWallClockStalls(t *testing.T) {
	wall := time.UnixMilli(1_700_000_000_000)
	c := New(func() time.Time { return wall }, 0)
	prev := c.Now()
	for range 1000 {
		next := c.Now()
		if next <= prev {
			t.Fatalf("Now went from %d to %d", prev, next)
		}
		prev = next
	}
	if got := prev.Millis(); got != wall.UnixMilli() {
		t.Fatalf("1000 events in one millisecond moved the wall part to %d", got)
	}
}

func TestNowSurvivesWallClockGoingBack(t *testing.T) {
	wall := time.UnixMilli(1_700_000_000_000)
	c := New(func() time.Time { return wall }, 0)
	before := c.Now()
	wall = wall.Add(-time.Hour)
	if after := c.Now(); after <= before {
		t.Fatalf("after the wall clock stepped back, Now returned %d <= %d", after, before)
	}
}

func TestFloorAndObserveWin(t *testing.T) {
	wall := time.UnixMilli(1_000)
	remote := FromTime(time.UnixMilli(5_000)) + 7
	c := New(func() time.Time { return wall }, FromTime(time.UnixMilli(2_000)))
	if ts := c.Now(); ts.Millis() != 2_000 || ts.Counter() != 1 {
		t.Fatalf("Now after floor 2000ms = %d/%d, want 2000/1", ts.Millis(), ts.Counter())
	}
	c.Observe(remote)
	if ts := c.Now(); ts != remote+1 {
		t.Fatalf("Now after observing %d = %d, want %d", remote, ts, remote+1)
	}
	c.Observe(remote - 100) // older observations change nothing
	if c.Last() != remote+1 {
		t.Fatalf("Last = %d after an older observation", c.Last())
	}
}

func TestCounterOverflowCarries(t *testing.T) {
	wall := time.UnixMilli(10)
	c := New(func() time.Time { return wall }, FromTime(wall)+0xffff)
	if ts := c.Now(); ts.Millis() != 11 || ts.Counter() != 0 {
		t.Fatalf("overflow gave %d/%d, want 11/0", ts.Millis(), ts.Counter())
	}
}

func TestAhead(t *testing.T) {
	wall := time.UnixMilli(1_000_000)
	c := New(func() time.Time { return wall }, 0)
	if d := c.Ahead(FromTime(wall.Add(6 * time.Minute))); d != 6*time.Minute {
		t.Fatalf("Ahead = %v, want 6m", d)
	}
	if d := c.Ahead(FromTime(wall.Add(-time.Second))); d >= 0 {
		t.Fatalf("Ahead of a past timestamp = %v, want negative", d)
	}
}
