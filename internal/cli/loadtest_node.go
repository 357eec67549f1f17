package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dt-cdn/dt/dt"
	"github.com/dt-cdn/dt/nodehost"
)

// loadStatus is a load test node's progress, in its /status under "load". Times are Unix
// nanoseconds of the wall clock, which both nodes share since they run on one machine.
type loadStatus struct {
	Added            int64 `json:"added"`
	AddErrors        int64 `json:"add_errors"`
	FirstAddUnixNano int64 `json:"first_add_unix_nano,omitempty"`
	AddsDoneUnixNano int64 `json:"adds_done_unix_nano,omitempty"`
	Expect           int   `json:"expect,omitempty"`
	Held             int64 `json:"held"`
	CompleteUnixNano int64 `json:"complete_unix_nano,omitempty"`
}

// loadNode is the load test's extension of a node: a writer of generated objects (node 1) or
// a counter that notes when every expected object arrived (node 2).
type loadNode struct {
	add, size, writers, expect int
	batch                      int
	readyFD                    int

	added, addErrors, firstAdd, addsDone atomic.Int64
	held, complete                       atomic.Int64 // written by the event goroutine only
}

func runLoadtestNode(ctx context.Context, args []string, env *Env) error {
	var f nodeFlags
	var l loadNode
	fs := newFlagSet(env, "loadtest-node", "dt loadtest-node [dt node flags] [--add N] [--expect N] [--ready-fd FD]",
		"A node process of dt loadtest: dt node, plus adding --add generated objects as fast as\n"+
			"possible (on a master) and noting when --expect objects are held. Not for direct use.")
	f.register(fs)
	f.registerMaster(fs)
	fs.IntVar(&l.add, "add", 0, "add `N` generated objects once linked (needs --master)")
	fs.IntVar(&l.size, "object-size", 200, "approximate size of each generated object in `BYTES`")
	fs.IntVar(&l.writers, "writers", 8, "`N` goroutines adding objects concurrently")
	fs.IntVar(&l.batch, "batch", 256, "`N` objects per AddObjects call (1: one AddObject call per object)")
	fs.IntVar(&l.expect, "expect", 0, "note the time when `N` objects are held")
	fs.IntVar(&l.readyFD, "ready-fd", 0, "write the node's addresses as JSON to file descriptor `FD` once serving")
	if err := fs.parse(args); err != nil {
		return err
	}
	if err := fs.wantArgs(0, ""); err != nil {
		return err
	}
	if err := f.check(fs); err != nil {
		return err
	}
	if l.add > 0 && !f.master {
		return fs.usageErrorf("--add needs --master")
	}
	if l.batch < 1 {
		return fs.usageErrorf("--batch must be at least 1")
	}
	if l.writers < 1 {
		return fs.usageErrorf("--writers must be at least 1")
	}
	p, cfg, err := newNodeProcess(env, &f)
	if err != nil {
		return err
	}
	p.ready = l.ready
	return p.run(ctx, func(ctx context.Context) error { return nodehost.Run(ctx, cfg, l.role) })
}

// role counts the node's objects and, on the writer, adds the generated ones once it serves.
func (l *loadNode) role(h *nodehost.Host) (nodehost.Role, error) {
	if err := h.Subscribe(dt.EventHandlerFunc(l.event)); err != nil {
		return nodehost.Role{}, err
	}
	return nodehost.Role{Status: l.status, Serve: func(ctx context.Context, ready func(nodehost.Serving) error) error {
		if err := ready(nodehost.Serving{}); err != nil {
			return err
		}
		if l.add == 0 {
			return nil
		}
		return l.addObjects(ctx, h.Node(), h.Logger())
	}}, nil
}

// ready hands the bound addresses to the parent process over an inherited pipe.
func (l *loadNode) ready(info NodeInfo) error {
	if l.readyFD == 0 {
		return nil
	}
	f := os.NewFile(uintptr(l.readyFD), "ready")
	if f == nil {
		return fmt.Errorf("ready descriptor %d is not open", l.readyFD)
	}
	defer f.Close()
	return writeJSON(f, info)
}

func (l *loadNode) event(ev dt.Event) {
	switch ev.Type {
	case dt.EventObjectAdded:
		if l.held.Add(1) == int64(l.expect) && l.complete.Load() == 0 {
			l.complete.Store(time.Now().UnixNano())
		}
	case dt.EventObjectRemoved:
		l.held.Add(-1)
	}
}

func (l *loadNode) status(s *nodehost.Status) {
	s.Load = &loadStatus{
		Added: l.added.Load(), AddErrors: l.addErrors.Load(),
		FirstAddUnixNano: l.firstAdd.Load(), AddsDoneUnixNano: l.addsDone.Load(),
		Expect: l.expect, Held: l.held.Load(), CompleteUnixNano: l.complete.Load(),
	}
}

// addObjects adds the generated objects from several goroutines once the node has synced (a
// master with peers would wait inside the first AddObject anyway; waiting here keeps the link
// set-up out of the measured time).
func (l *loadNode) addObjects(ctx context.Context, n *dt.Node, log *slog.Logger) error {
	if err := n.WaitSynced(ctx); err != nil {
		return err
	}
	start := time.Now()
	l.firstAdd.Store(start.UnixNano())
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := range l.writers {
		rng := rand.New(rand.NewPCG(uint64(start.UnixNano()), uint64(w)))
		wg.Go(func() {
			batch := int64(l.batch)
			for first := next.Add(batch) - batch; first < int64(l.add) && ctx.Err() == nil; first = next.Add(batch) - batch {
				objects := make([]any, 0, batch)
				for i := first; i < min(first+batch, int64(l.add)); i++ {
					objects = append(objects, loadObject(i, l.size, rng))
				}
				if len(objects) == 1 {
					_, err := n.AddObject(ctx, objects[0])
					l.count(1, err)
					continue
				}
				_, err := n.AddObjects(ctx, objects)
				l.count(len(objects), err)
			}
		})
	}
	wg.Wait()
	done := time.Now()
	l.addsDone.Store(done.UnixNano())
	secs := done.Sub(start).Seconds()
	log.Info("Objects added", slog.Int64("added", l.added.Load()), slog.Int64("errors", l.addErrors.Load()),
		slog.Float64("seconds", secs), slog.Float64("per_second", float64(l.added.Load())/secs))
	return nil
}

// count tallies the outcome of adding k objects.
func (l *loadNode) count(k int, err error) {
	if err != nil {
		l.addErrors.Add(int64(k))
		return
	}
	l.added.Add(int64(k))
}

// loadObject makes object i, padded with random letters to about size bytes of JSON.
func loadObject(i int64, size int, rng *rand.Rand) json.RawMessage {
	b := fmt.Appendf(nil, `{"i":%d,"pad":"`, i)
	for len(b) < size-2 {
		b = append(b, byte('a'+rng.IntN(26)))
	}
	return append(b, `"}`...)
}
