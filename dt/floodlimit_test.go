package dt

import (
	"fmt"
	"testing"
	"time"

	"golang.org/x/time/rate"
)

func testFloodLimits(t *testing.T, mod func(*Config)) *floodLimits {
	t.Helper()
	cfg := Config{}
	if mod != nil {
		mod(&cfg)
	}
	cfg = cfg.withDefaults()
	return newFloodLimits(&cfg)
}

func nodeIDn(i int) NodeID {
	var id NodeID
	copy(id[:], fmt.Sprintf("origin-%09d", i))
	return id
}

func TestNewOriginsPerNeighbourAreBounded(t *testing.T) {
	f := testFloodLimits(t, func(c *Config) { c.NewOriginRate, c.NewOriginBurst = 1, 10 })
	now := time.Unix(1e9, 0)
	attacker := f.neighbour(neighbourKey{peer: nodeIDn(-1)})
	honest := f.neighbour(neighbourKey{peer: nodeIDn(-2)})
	passed := 0
	for i := range 10_000 { // one new identity per message
		if f.admit(attacker, nodeIDn(i), false, now) == dropNone {
			passed++
		}
	}
	if passed != 10 {
		t.Fatalf("%d messages from minted origins passed, want the burst of 10", passed)
	}
	// Another neighbour's budget is its own; the attacker's refills at NewOriginRate.
	if r := f.admit(honest, nodeIDn(1_000_000), false, now); r != dropNone {
		t.Fatalf("another neighbour's new origin: %s", r)
	}
	if r := f.admit(attacker, nodeIDn(2_000_000), false, now.Add(time.Second)); r != dropNone {
		t.Fatalf("a new origin a second later: %s", r)
	}
	// An origin admitted once is known to every neighbour, and a neighbour's own identity needs
	// no new-origin token.
	if r := f.admit(honest, nodeIDn(0), false, now.Add(time.Second)); r != dropNone {
		t.Fatalf("a known origin through another neighbour: %s", r)
	}
	if r := f.admit(attacker, nodeIDn(-1), true, now.Add(time.Second)); r != dropNone {
		t.Fatalf("the neighbour's own messages: %s", r)
	}
}

func TestOriginRateSpendsNoLinkBudget(t *testing.T) {
	f := testFloodLimits(t, func(c *Config) {
		c.MessageRate, c.MessageBurst = 10, 10
		c.LinkMessageRate, c.LinkMessageBurst = 100, 100
		c.NewOriginBurst = 1000
	})
	now := time.Unix(1e9, 0)
	nb := f.neighbour(neighbourKey{peer: nodeIDn(-1)})
	drops := map[dropReason]int{}
	for range 10_000 {
		drops[f.admit(nb, nodeIDn(1), false, now)]++
	}
	if drops[dropNone] != 10 || drops[dropOriginRate] != 9990 {
		t.Fatalf("one origin flooding: %v, want 10 passed and the rest over its rate", drops)
	}
	// The link budget is untouched by the origin's excess: 90 other origins still pass at once.
	passed := 0
	for i := range 90 {
		if f.admit(nb, nodeIDn(100+i), false, now) == dropNone {
			passed++
		}
	}
	if passed != 90 {
		t.Fatalf("%d of 90 other origins passed", passed)
	}
}

// Established origins flooding through one neighbour fill its budget; quiet origins relayed by
// the same neighbour still pass through the reserved quarter.
func TestQuietOriginsKeepTheirReserve(t *testing.T) {
	f := testFloodLimits(t, func(c *Config) {
		c.MessageRate, c.MessageBurst = rate.Inf, 1
		c.LinkMessageRate, c.LinkMessageBurst = 400, 400
		c.NewOriginBurst = 1000
	})
	now := time.Unix(1e9, 0)
	nb := f.neighbour(neighbourKey{peer: nodeIDn(-1)})
	flood, heartbeats := 0, 0
	for ms := range 10_000 { // ten seconds, a millisecond at a time
		at := now.Add(time.Duration(ms) * time.Millisecond)
		for i := range 20 { // 20 busy origins, 20,000 messages a second together
			if f.admit(nb, nodeIDn(i), false, at) == dropNone {
				flood++
			}
		}
		if ms%500 == 0 { // 40 heartbeat origins, one message each per 500 ms
			for i := range 40 {
				if f.admit(nb, nodeIDn(1000+i), false, at) == dropNone {
					heartbeats++
				}
			}
		}
	}
	if heartbeats != 40*20 {
		t.Fatalf("%d of %d heartbeats passed during the flood", heartbeats, 40*20)
	}
	// The whole neighbour stays within LinkMessageRate: 400 burst plus 400/s for 10 s.
	if total := flood + heartbeats; total > 400+4000+10 {
		t.Fatalf("%d messages passed in 10 s, over the neighbour's budget", total)
	}
	t.Logf("10 s: %d flood messages and %d heartbeats passed", flood, heartbeats)
}

func TestOriginBudgetsAreBoundedWithoutReset(t *testing.T) {
	f := testFloodLimits(t, func(c *Config) {
		c.MaxOrigins = 100
		c.MessageRate, c.MessageBurst = 1, 1
		c.NewOriginBurst = 1 << 20
	})
	now := time.Unix(1e9, 0)
	nb := f.neighbour(neighbourKey{peer: nodeIDn(-1)})
	heard := nodeIDn(-5)
	f.admit(nb, heard, false, now) // spends heard's only token
	for i := range 10_000 {
		f.admit(nb, nodeIDn(i), false, now)
		if i%50 == 0 {
			f.admit(nb, heard, false, now) // heard recently: never the one forgotten
		}
		if o, _, _ := f.sizes(); o > 100 {
			t.Fatalf("%d origins remembered, bound 100", o)
		}
	}
	if r := f.admit(nb, heard, false, now); r != dropOriginRate {
		t.Fatalf("an origin heard recently was forgotten (its budget reset): %q", r)
	}
	if _, _, evicted := f.sizes(); evicted != 10_000+1-100 {
		t.Fatalf("evicted %d origins, want %d", evicted, 10_000+1-100)
	}
}

func TestSeenCacheBound(t *testing.T) {
	now := time.Unix(1e9, 0)
	c := newSeenCache(time.Minute, 1000, now)
	var first [16]byte
	first[0] = 0xff
	if !c.add(first, now) {
		t.Fatal("a new id was not new")
	}
	for i := range 100_000 {
		var id [16]byte
		copy(id[:], fmt.Sprint(i))
		if !c.add(id, now) {
			t.Fatalf("id %d reported seen", i)
		}
		if n, _ := c.size(); n > 1000 {
			t.Fatalf("%d ids remembered, bound 1000", n)
		}
	}
	if _, early := c.size(); early < 100_000/500-1 {
		t.Fatalf("%d early rotations", early)
	}
	// The recent half is still remembered; the first id was forgotten early.
	var recent [16]byte
	copy(recent[:], fmt.Sprint(99_999))
	if !c.contains(recent, now) || c.add(recent, now) {
		t.Fatal("the newest id was forgotten")
	}
	if c.contains(first, now) {
		t.Fatal("the oldest id is still remembered past the bound")
	}
	// Within the window an id is remembered; after two windows it is not.
	c = newSeenCache(time.Minute, 1000, now)
	c.add(first, now)
	if c.add(first, now.Add(90*time.Second)) {
		t.Fatal("an id was forgotten within the window")
	}
	if !c.add(first, now.Add(5*time.Minute)) {
		t.Fatal("an id was remembered past two windows")
	}
}

func TestFloodConfigValidation(t *testing.T) {
	for _, c := range []Config{
		{MessageRate: -1}, {LinkMessageRate: -1}, {NewOriginBurst: -1}, {QuietOriginRate: -2},
		{MaxSeenMessages: 1}, {MaxOrigins: -1}, {MessageQueueBytes: 1000},
	} {
		c.DataDir, c.Keys.Network = "x", NetworkKey{1}
		if err := c.withDefaults().validate(); err == nil {
			t.Errorf("%+v: no error", c)
		}
	}
}
