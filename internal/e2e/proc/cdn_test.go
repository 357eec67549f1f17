package proc

import (
	"fmt"
	"net/http"
	"testing"
	"time"
)

// heartbeatInterval is the edges' default heartbeat interval, which the tests keep: the
// redirector's 6 s to drop a dead edge is three missed heartbeats at this interval.
const heartbeatInterval = 2 * time.Second

// avoidWithin is how soon after an edge dies the redirector stops sending visitors to it: three
// missed heartbeats at the default interval.
const avoidWithin = 3 * heartbeatInterval

// transitMargin allows for a heartbeat the edge sent just before the kill and the redirector
// received just after: the 6 s run from its arrival. On loopback that takes milliseconds; the
// margin covers a loaded CI machine.
const transitMargin = 250 * time.Millisecond

// TestCDN runs a whole CDN as processes (a hub node, three edges at distinct places, a
// redirector) and takes it through its life in order: a publish fetched through the redirector,
// a republish, an edge killed and restarted, two edges cut off from the master side during a
// publish, and a rollback. Each step starts from the state the one before left, and the test
// stops at the first step that fails.
func TestCDN(t *testing.T) {
	skipShort(t)
	t.Parallel()
	began := time.Now()
	n := newNetwork(t)
	// The first edge dials the hub directly; the other two through proxies the partition cuts.
	ams := n.startEdge(t, "edge-amsterdam", "52.37,4.90", false)
	nyc := n.startEdge(t, "edge-new-york", "40.71,-74.01", true)
	tyo := n.startEdge(t, "edge-tokyo", "35.68,139.69", true)
	n.startRedirector(t)
	t.Logf("network of 5 processes up in %s", time.Since(began).Round(time.Millisecond))

	c := &cdn{network: n, ams: ams, nyc: nyc, tyo: tyo, sites: map[int]siteGen{}, deploys: map[int]deployRef{}}
	for _, step := range []struct {
		name string
		run  func(*testing.T)
	}{
		{"publish", c.testPublish},
		{"republish", c.testRepublish},
		{"kill and restart an edge", c.testKillEdge},
		{"partition two edges", c.testPartition},
		{"rollback", c.testRollback},
	} {
		stepBegan := time.Now()
		ok := t.Run(step.name, step.run)
		t.Logf("step %q took %s", step.name, time.Since(stepBegan).Round(time.Millisecond))
		if !ok {
			return
		}
	}
}

// cdn is the state TestCDN's steps share.
type cdn struct {
	*network
	ams, nyc, tyo *edgeProc
	sites         map[int]siteGen   // by generation
	deploys       map[int]deployRef // by generation
}

// publishGen publishes generation gen of the site and expects it live on the edges named.
func (c *cdn) publishGen(t *testing.T, gen int, live ...*edgeProc) publishResult {
	t.Helper()
	c.sites[gen] = makeSite(gen)
	r := c.publish(t, c.sites[gen])
	c.deploys[gen] = deployRef{id: r.Deploy, gen: gen}
	t.Logf("generation %d: deploy %.12s, %d files, %d blobs (%d bytes) sent, live on %d/%d edges, in %s",
		gen, r.Deploy, r.Files, r.BlobsSent, r.BytesSent, r.EdgesLive, len(r.Edges), r.took.Round(time.Millisecond))
	c.checkLiveOn(t, r, live...)
	return r
}

// checkLiveOn checks that a publish summary reports the deploy live on exactly the edges named.
func (c *cdn) checkLiveOn(t *testing.T, r publishResult, live ...*edgeProc) {
	t.Helper()
	if r.EdgesLive != len(live) || len(r.Edges) != len(live) {
		t.Fatalf("live on %d of %d edges, want %d: %+v", r.EdgesLive, len(r.Edges), len(live), r.Edges)
	}
	for _, e := range live {
		found := false
		for _, x := range r.Edges {
			found = found || (x.URL == e.url() && x.Live && x.Deploy == r.Deploy)
		}
		if !found {
			t.Errorf("%s (%s) not reported live: %+v", e.name, e.url(), r.Edges)
		}
	}
}

// checkAllServe checks that every edge named serves generation gen, byte for byte.
func (c *cdn) checkAllServe(t *testing.T, gen int, edges ...*edgeProc) {
	t.Helper()
	for _, e := range edges {
		if err := c.checkServes(e, c.sites[gen]); err != nil {
			t.Error(err)
		}
	}
}

// waitEligible waits until the redirector would send visitors to every edge named, and returns
// how long that took.
func (c *cdn) waitEligible(t *testing.T, timeout time.Duration, edges ...*edgeProc) time.Duration {
	t.Helper()
	return waitFor(t, timeout, "edges eligible at the redirector", func() error {
		st, err := c.redirectorStatus()
		if err != nil {
			return err
		}
		for _, e := range edges {
			if ok, why := st.eligible(e); !ok {
				return fmt.Errorf("%s: %s", e.name, why)
			}
		}
		return nil
	})
}

// testPublish publishes the site and fetches every file through the redirector, following the
// redirect as a browser does, and from every edge directly: the bytes are the source's.
func (c *cdn) testPublish(t *testing.T) {
	all := []*edgeProc{c.ams, c.nyc, c.tyo}
	r := c.publishGen(t, 1, all...)
	if r.BlobsSent == 0 {
		t.Errorf("the first publish sent no blobs")
	}
	c.checkAllServe(t, 1, all...)

	// Until the redirector has heard a heartbeat naming the deploy from each edge, it sends
	// visitors to fewer edges (or none); the publish only waited for its own view.
	c.waitEligible(t, 10*time.Second, all...)
	browser := &http.Client{Timeout: 10 * time.Second} // follows redirects
	defer browser.CloseIdleConnections()
	seen := map[string]int{}
	for range 4 {
		for p, want := range c.sites[1].files {
			resp, err := browser.Get("http://" + c.redAt.HTTP + sitePath(p))
			if err != nil {
				t.Fatal(err)
			}
			body, err := readAll(resp)
			if err != nil {
				t.Fatal(err)
			}
			final := resp.Request.URL.String()
			e := c.edgeOf(final)
			switch {
			case resp.StatusCode != http.StatusOK:
				t.Fatalf("GET %s through the redirector: %s at %s", p, resp.Status, final)
			case e == nil:
				t.Fatalf("GET %s through the redirector ended at %s, no edge", p, final)
			case string(body) != string(want):
				t.Fatalf("GET %s through the redirector (%s): %d bytes differ from the source's %d", p, e.name, len(body), len(want))
			}
			seen[e.name]++
		}
	}
	t.Logf("visitors sent to %v", seen)
}

// testRepublish changes files and publishes again while visitors keep coming: every edge ends up
// serving the new files, and once the redirector points to the new deploy no visitor is sent to
// an edge still on the old one.
func (c *cdn) testRepublish(t *testing.T) {
	all := []*edgeProc{c.ams, c.nyc, c.tyo}
	v := c.startVisitors(t)
	r := c.publishGen(t, 2, all...)
	if r.Previous != c.deploys[1].id {
		t.Errorf("previous deploy %.12s, want generation 1's %.12s", r.Previous, c.deploys[1].id)
	}
	// 4 KiB of the big file changed: only the chunks around the change travel.
	if r.BytesSent >= bigFile {
		t.Errorf("the republish sent %d bytes, more than the whole big file (%d)", r.BytesSent, bigFile)
	}
	published := time.Now()
	c.checkAllServe(t, 2, all...)
	// Keep visiting a little past the publish, to see the redirector after the switch.
	waitFor(t, 10*time.Second, "visits after the publish", func() error {
		for _, x := range v.snapshot() {
			if x.at.After(published.Add(500*time.Millisecond)) && x.current == c.deploys[2].id {
				return nil
			}
		}
		return fmt.Errorf("no visit yet with the redirector on the new deploy")
	})
	visits := v.finish()
	rep, err := checkSwitch(visits, c.deploys[1], c.deploys[2], nil)
	t.Logf("across the switch: %s", rep)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range visits {
		if x.at.After(published) && x.code != http.StatusServiceUnavailable && x.gen != 2 {
			t.Fatalf("after dt-publish reported the deploy live: %s", x)
		}
	}
}

// testKillEdge kills an edge with SIGKILL and measures how long the redirector keeps sending
// visitors to it; publishes while it is down; then restarts it on its data directory: it catches
// up with the deploy it missed and the redirector takes it back, never sending it a visitor
// before it serves that deploy.
func (c *cdn) testKillEdge(t *testing.T) {
	victim, others := c.ams, []*edgeProc{c.nyc, c.tyo}
	c.waitEligible(t, 10*time.Second, victim, c.nyc, c.tyo)
	v := c.startVisitors(t)
	// Let some visits reach the victim first, so its last redirect measures something.
	waitFor(t, 10*time.Second, "a visit to the edge to kill", func() error {
		for _, x := range v.snapshot() {
			if x.edge == victim && x.err == nil {
				return nil
			}
		}
		return fmt.Errorf("no visitor sent to %s yet", victim.name)
	})
	// Kill just after the redirector heard a heartbeat: the worst case, in which it has to miss
	// all three of the next ones before the 6 s are up.
	var seq uint64
	waitFor(t, 2*heartbeatInterval, "a fresh heartbeat of the edge to kill", func() error {
		st, err := c.redirectorStatus()
		if err != nil {
			return err
		}
		if prev := seq; st.lastSeq(victim) != prev {
			seq = st.lastSeq(victim)
			if prev != 0 {
				return nil
			}
		}
		return fmt.Errorf("no new heartbeat of %s after seq %d", victim.name, seq)
	})
	killed := time.Now()
	victim.kill(t)
	droppedAfter := waitFor(t, 3*avoidWithin, "the redirector drops the killed edge", func() error {
		st, err := c.redirectorStatus()
		if err != nil {
			return err
		}
		if ok, _ := st.eligible(victim); ok {
			return fmt.Errorf("%s still eligible", victim.name)
		}
		return nil
	})
	// Keep visiting a while, so a later redirect to the dead edge would be seen.
	dropped := time.Now()
	waitFor(t, 10*time.Second, "visits after the drop", func() error {
		for _, x := range v.snapshot() {
			if x.at.After(dropped.Add(time.Second)) {
				return nil
			}
		}
		return fmt.Errorf("no visit a second after the drop yet")
	})
	visits := v.finish()
	var last time.Time
	for _, x := range visits {
		if x.edge == victim && x.at.After(killed) {
			last = x.at
		}
	}
	avoidedAfter := last.Sub(killed)
	if last.IsZero() {
		avoidedAfter = 0
	}
	t.Logf("kill -9 of %s: last visitor sent to it %s after the kill, the redirector's status shows it ineligible after %s (bound %s, heartbeats every %s)",
		victim.name, avoidedAfter.Round(time.Millisecond), droppedAfter.Round(time.Millisecond), avoidWithin, heartbeatInterval)
	if avoidedAfter > avoidWithin+transitMargin {
		t.Errorf("visitors were sent to the killed edge %s after the kill, past the %s bound", avoidedAfter.Round(time.Millisecond), avoidWithin)
	}
	// Only visits to the dead edge may fail, and only before the bound.
	rep, err := checkSwitch(visits, c.deploys[2], c.deploys[2], func(x visit) bool {
		return x.edge == victim && x.at.Sub(killed) <= avoidWithin+transitMargin
	})
	t.Logf("around the kill: %s", rep)
	if err != nil {
		t.Fatal(err)
	}
	// A publish while the edge is down: it must catch up when it comes back.
	c.publishGen(t, 3, others...)
	v = c.startVisitors(t)
	restarted := time.Now()
	victim.restart(t)
	ready := time.Since(restarted)
	waitFor(t, 30*time.Second, "the restarted edge serves the deploy it missed", func() error {
		return c.checkServes(victim, c.sites[3])
	})
	caughtUp := time.Since(restarted)
	c.waitEligible(t, 30*time.Second, victim)
	t.Logf("restarted %s: ready after %s, serving generation 3 after %s, eligible again after %s",
		victim.name, ready.Round(time.Millisecond), caughtUp.Round(time.Millisecond), time.Since(restarted).Round(time.Millisecond))
	waitFor(t, 10*time.Second, "a visit to the restarted edge", func() error {
		for _, x := range v.snapshot() {
			if x.edge == victim && x.err == nil {
				return nil
			}
		}
		return fmt.Errorf("no visitor sent to %s yet", victim.name)
	})
	rep, err = checkSwitch(v.finish(), c.deploys[3], c.deploys[3], nil)
	t.Logf("around the restart: %s", rep)
	if err != nil {
		t.Fatal(err)
	}
}

// testPartition cuts two edges off from the hub (and so from the master side: the publisher,
// the redirector and the third edge), publishes, and checks that they stay on the old deploy and
// get no visitors once the third edge serves the new one; after healing they converge on the new
// deploy and get visitors again.
func (c *cdn) testPartition(t *testing.T) {
	cut := []*edgeProc{c.nyc, c.tyo}
	cutAt := time.Now()
	for _, e := range cut {
		e.link.Cut()
	}
	for _, e := range cut {
		waitFor(t, 10*time.Second, e.name+" cut off", func() error {
			st, err := c.nodeStatus(e.info())
			if err != nil {
				return err
			}
			if st.Peers != 0 {
				return fmt.Errorf("%s still has %d links", e.name, st.Peers)
			}
			return nil
		})
	}
	v := c.startVisitors(t)
	c.publishGen(t, 4, c.ams)
	c.checkAllServe(t, 4, c.ams)
	c.checkAllServe(t, 3, cut...)
	for _, e := range cut {
		st, err := c.nodeStatus(e.info())
		if err != nil {
			t.Fatal(err)
		}
		if st.Edge == nil || st.Edge.Active != c.deploys[3].id || st.Edge.Target != c.deploys[3].id {
			t.Fatalf("%s during the partition: %+v, want generation 3's deploy %.12s", e.name, st.Edge, c.deploys[3].id)
		}
	}
	// Hold the partition until the redirector has missed three of the cut edges' heartbeats
	// and probed them: they answer (they serve generation 3), which must not make them eligible.
	time.Sleep(time.Until(cutAt.Add(avoidWithin + time.Second)))
	for _, e := range cut {
		e.link.Heal()
	}
	healed := time.Now()
	for _, e := range cut {
		waitFor(t, 30*time.Second, e.name+" converges after the partition", func() error {
			return c.checkServes(e, c.sites[4])
		})
	}
	converged := time.Since(healed)
	readmitted := c.waitEligible(t, 30*time.Second, cut...)
	t.Logf("after healing: both edges serve generation 4 within %s, eligible again within %s",
		converged.Round(time.Millisecond), (converged + readmitted).Round(time.Millisecond))
	visits := v.finish()
	rep, err := checkSwitch(visits, c.deploys[3], c.deploys[4], nil)
	t.Logf("across the partition: %s", rep)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range visits {
		// Until ams reported generation 4 no edge served it, and the redirector's fallback may
		// send a visitor to any live edge still serving generation 3; after that, only ams.
		if x.current == c.deploys[4].id && x.served && x.at.Before(healed) && x.edge != nil && x.edge != c.ams {
			t.Fatalf("a visitor was sent to a cut-off edge: %s", x)
		}
	}
}

// testRollback rolls back to the deploy before the current one: nothing is uploaded and every
// edge serves the previous files again.
func (c *cdn) testRollback(t *testing.T) {
	all := []*edgeProc{c.ams, c.nyc, c.tyo}
	c.waitEligible(t, 10*time.Second, all...)
	v := c.startVisitors(t)
	r := c.rollback(t)
	t.Logf("rollback to %.12s in %s: %d blobs, %d bytes sent", r.Deploy, r.took.Round(time.Millisecond), r.BlobsSent, r.BytesSent)
	if r.Deploy != c.deploys[3].id || r.Previous != c.deploys[4].id {
		t.Fatalf("rolled back from %.12s to %.12s, want from generation 4's %.12s to generation 3's %.12s",
			r.Previous, r.Deploy, c.deploys[4].id, c.deploys[3].id)
	}
	if r.BlobsSent != 0 || r.BytesSent != 0 {
		t.Errorf("a rollback uploaded %d blobs (%d bytes)", r.BlobsSent, r.BytesSent)
	}
	c.checkLiveOn(t, r, all...)
	c.checkAllServe(t, 3, all...)
	waitFor(t, 10*time.Second, "the redirector on the rolled-back deploy", func() error {
		st, err := c.redirectorStatus()
		if err != nil {
			return err
		}
		if st.Current != c.deploys[3].id {
			return fmt.Errorf("current deploy %.12s", st.Current)
		}
		return nil
	})
	rep, err := checkSwitch(v.finish(), c.deploys[4], c.deploys[3], nil)
	t.Logf("across the rollback: %s", rep)
	if err != nil {
		t.Fatal(err)
	}
}
