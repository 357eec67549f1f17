package resolve

import (
	"context"
	"sync"
	"time"

	"github.com/dt-cdn/dt/dt"
)

// DefaultResend is how often Gather repeats a request while it waits: a node that links up after
// the first send answers within about a second of linking, and each repeat is one small message
// that the nodes which already answered drop.
const DefaultResend = time.Second

// GatherConfig configures Gather. Zero values mean the defaults given per field.
type GatherConfig struct {
	// Node sends the request again while answers are awaited. Required.
	Node Messenger
	// Self is the asking node's id, under which Lookup's answer is kept.
	Self dt.NodeID
	// Lookup, when set, resolves the request on the asking machine as well, so that its own view
	// is one of the answers. Nil: only the other nodes answer.
	Lookup LookupFunc
	// Timeout bounds the wait for answers and the asking machine's own lookup: long enough for
	// the slowest resolver a node may have, short enough for a person waiting. Zero ends the
	// wait at once, with only the answers already in: set it.
	Timeout time.Duration
	// Expect ends the wait once this many nodes answered (the asking machine included). Zero:
	// the wait always lasts Timeout, for every node online to have its say.
	Expect int
	// Resend is how often the request goes out again. Zero: DefaultResend.
	Resend time.Duration
}

// Gather collects the answers to the collector's request, which the caller has already sent
// once, and returns them by node id. It repeats the request every cfg.Resend, because a node
// that links up after the first send never saw it; the nodes that answered keep the request's
// id and drop the repeats, so each node answers once. It returns once cfg.Expect nodes answered,
// cfg.Timeout passed or ctx ended, and after the asking machine's own lookup has returned. It
// does not judge the answers: Compare does.
func Gather(ctx context.Context, c *Collector, cfg GatherConfig) []Answer {
	if cfg.Resend <= 0 {
		cfg.Resend = DefaultResend
	}
	ctx, stop := context.WithTimeout(ctx, cfg.Timeout)
	defer stop()
	var wg sync.WaitGroup
	if cfg.Lookup != nil {
		wg.Go(func() { c.Add(Resolve(ctx, cfg.Lookup, c.req, cfg.Self, cfg.Timeout)) })
	}
	waitAnswers(ctx, c, cfg.Expect, cfg.Resend, func() {
		// The first send succeeded; a repeat that fails only means fewer answers.
		_ = cfg.Node.SendMessage(ctx, c.req)
	})
	stop()
	wg.Wait()
	return c.Answers()
}

// waitAnswers returns once expect answers arrived (never, when expect is 0) or ctx ends, calling
// resend every interval meanwhile.
func waitAnswers(ctx context.Context, c *Collector, expect int, interval time.Duration, resend func()) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		n, changed := c.Count()
		if expect > 0 && n >= expect {
			return
		}
		select {
		case <-changed:
		case <-tick.C:
			resend()
		case <-ctx.Done():
			return
		}
	}
}
