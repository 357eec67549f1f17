package proc

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// visit is one simulated visitor: the redirector's current deploy read just before the visitor
// asked it, where the redirector sent the visitor, and what that edge served.
type visit struct {
	at      time.Time // when the visitor asked the redirector
	current string    // the redirector's current deploy, read just before
	// served says some edge was eligible for current by the same reading: until then the
	// redirector falls back to edges still serving the previous deploy.
	served bool
	code   int       // the redirector's status
	edge   *edgeProc // where it sent the visitor; nil when it did not redirect
	gen    int       // the generation of version.txt the edge served; -1 when none
	err    error     // the redirector or the edge could not be reached, or answered oddly
}

func (v visit) String() string {
	name := "nowhere"
	if v.edge != nil {
		name = v.edge.name
	}
	s := fmt.Sprintf("visit at %s: current %.12s, %d → %s, generation %d", v.at.Format("15:04:05.000"), v.current, v.code, name, v.gen)
	if v.err != nil {
		s += ": " + v.err.Error()
	}
	return s
}

// visitors asks the redirector for /version.txt over and over in the background, and follows
// each redirect to the edge, until stopped.
type visitors struct {
	n    *network
	stop chan struct{}
	done chan struct{}

	mu     sync.Mutex
	visits []visit // guarded by mu
}

// startVisitors starts visiting; the test's cleanup stops it if the test does not.
func (n *network) startVisitors(t *testing.T) *visitors {
	v := &visitors{n: n, stop: make(chan struct{}), done: make(chan struct{})}
	go v.loop()
	t.Cleanup(func() { v.finish() })
	return v
}

func (v *visitors) loop() {
	defer close(v.done)
	for {
		select {
		case <-v.stop:
			return
		default:
		}
		one := v.visit()
		v.mu.Lock()
		v.visits = append(v.visits, one)
		v.mu.Unlock()
		// A pause keeps two cores free enough for the processes under test while still
		// sampling every few tens of milliseconds.
		time.Sleep(5 * time.Millisecond)
	}
}

func (v *visitors) visit() visit {
	n := v.n
	one := visit{gen: -1}
	st, err := n.redirectorStatus()
	if err != nil {
		one.at, one.err = time.Now(), fmt.Errorf("redirector status: %w", err)
		return one
	}
	one.current, one.at = st.Current, time.Now()
	for _, e := range st.Edges {
		one.served = one.served || e.Eligible
	}
	code, loc, _, err := n.get("http://" + n.redAt.HTTP + "/version.txt")
	one.code = code
	switch {
	case err != nil:
		one.err = fmt.Errorf("redirector: %w", err)
		return one
	case code == http.StatusServiceUnavailable:
		return one // no eligible edge: allowed, counted by the checks
	case code < 300 || code > 399:
		one.err = fmt.Errorf("redirector answered %d", code)
		return one
	}
	if one.edge = n.edgeOf(loc); one.edge == nil {
		one.err = fmt.Errorf("redirected to %q, no edge of the network", loc)
		return one
	}
	code, _, body, err := n.get(loc)
	switch {
	case err != nil:
		one.err = fmt.Errorf("edge: %w", err)
	case code != http.StatusOK:
		one.err = fmt.Errorf("edge answered %d", code)
	default:
		if one.gen = generationOf(body); one.gen < 0 {
			one.err = fmt.Errorf("edge served %q", body)
		}
	}
	return one
}

// snapshot returns the visits so far.
func (v *visitors) snapshot() []visit {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([]visit(nil), v.visits...)
}

// finish stops visiting and returns every visit. Safe to call twice.
func (v *visitors) finish() []visit {
	select {
	case <-v.stop:
	default:
		close(v.stop)
	}
	<-v.done
	return v.snapshot()
}

// deployRef is a published deploy and the site generation it holds.
type deployRef struct {
	id  string
	gen int
}

// switchReport sums up the visits across a switch of the current deploy.
type switchReport struct {
	visits, toFrom, toTo, unavailable int
}

func (r switchReport) String() string {
	return fmt.Sprintf("%d visits: %d while the redirector's current deploy was the old one, %d the new one; %d answered 503",
		r.visits, r.toFrom, r.toTo, r.unavailable)
}

// checkSwitch checks the visitors' guarantee across a switch of the current deploy from one
// deploy to another (the same for a period without a switch): a visitor who asked the
// redirector while its current deploy was to, and some edge was eligible for to, was sent to an
// edge that served to, never to one still on from; a visitor who asked while no edge served to
// yet (the redirector's fallback to the previous deploy) or while the current deploy was from
// got either (the edge may have switched between the redirect and the fetch). Visits that
// failed are errors unless tolerate accepts them.
func checkSwitch(visits []visit, from, to deployRef, tolerate func(visit) bool) (switchReport, error) {
	var (
		r    switchReport
		errs []string
	)
	bad := func(v visit, why string) {
		if len(errs) < 10 {
			errs = append(errs, why+": "+v.String())
		}
	}
	for _, v := range visits {
		r.visits++
		if v.err != nil {
			if tolerate == nil || !tolerate(v) {
				bad(v, "failed")
			}
			continue
		}
		switch v.current {
		case to.id:
			r.toTo++
		case from.id:
			r.toFrom++
		default:
			bad(v, "unexpected current deploy")
			continue
		}
		if v.code == http.StatusServiceUnavailable {
			r.unavailable++
			continue
		}
		switch {
		case v.current == to.id && v.served && v.gen != to.gen:
			bad(v, fmt.Sprintf("sent to an edge on generation %d after an edge served generation %d", v.gen, to.gen))
		case v.current == to.id && v.gen != to.gen && v.gen != from.gen:
			bad(v, "served a generation from neither deploy")
		case v.current == from.id && v.gen != from.gen && v.gen != to.gen:
			bad(v, "served a generation from neither deploy")
		}
	}
	if len(errs) > 0 {
		return r, errors.New(strings.Join(errs, "\n"))
	}
	return r, nil
}
