// Package example runs the original node-distributed-table's five-node example of the table in
// one process, as `dt example` does: node1 is a master with no listener that dials node2; node2,
// node3 and node4 listen on 127.0.0.1 and node5 on [::1]; node3 and node5 dial node2, node4
// dials node3. Once all are linked, every Round the master adds an object and removes the one
// added three rounds earlier, and a random plain node sends a message. Every event of every node
// is printed as one line, and for each add and message the time until every other node had it.
package example

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/dt-cdn/dt/dt"
)

// Round is the original example's pace: one add, one removal and one message every 2 s.
const Round = 2 * time.Second

// DrainLimit bounds how long the example waits, after its last round, for deliveries still in
// flight before it closes the nodes: far beyond a delivery's time on loopback, so only a
// delivery that will never finish is cut short (and counted as unfinished).
const DrainLimit = 10 * time.Second

// linkLimit bounds the wait for every link of the topology before the first round; past it the
// rounds start anyway, and the summary shows what did not arrive.
const linkLimit = 20 * time.Second

// Config configures Run.
type Config struct {
	// Out receives the example's lines: each node's id and addresses, every event of every
	// node, each delivery's time and the summary. Lines are written whole, one at a time.
	// Required.
	Out io.Writer
	// Dir keeps the nodes' data and the network's keys across runs, so a second run starts with
	// what the first one left. Empty: a temporary directory, removed when Run returns.
	Dir string
	// BasePort is the first of the four listening ports: node2, node3 and node4 listen on
	// 127.0.0.1 ports BasePort to BasePort+2 and node5 on [::1] port BasePort+3, the original's
	// layout. Zero lets the system pick every port, so that runs never collide.
	BasePort int
	// Duration stops the rounds after this long. Zero: they run until the context ends.
	Duration time.Duration
}

// check refuses a Config Run cannot run.
func (c *Config) check() error {
	var errs []error
	if c.Out == nil {
		errs = append(errs, errors.New("example: Config.Out is required"))
	}
	if c.BasePort < 0 || c.BasePort > 65535-3 {
		errs = append(errs, fmt.Errorf("example: Config.BasePort %d out of range", c.BasePort))
	}
	if c.Duration < 0 {
		errs = append(errs, errors.New("example: Config.Duration must not be negative"))
	}
	return errors.Join(errs...)
}

// exNode is one node of the example.
type exNode struct {
	name string
	n    *dt.Node
}

// example owns the five nodes, the printer and the delivery tracker.
type example struct {
	out     *lineWriter
	nodes   []*exNode // node1 .. node5
	names   map[dt.NodeID]string
	started chan struct{} // closed when every node has emitted started

	mu         sync.Mutex
	nStarted   int                  // guarded by mu
	pending    map[string]*delivery // guarded by mu: tracked key → who has yet to see it
	drained    chan struct{}        // guarded by mu: closed and replaced when pending empties
	addLat     []time.Duration      // guarded by mu
	msgLat     []time.Duration      // guarded by mu
	unfinished int                  // guarded by mu
}

// delivery is an add or a message on its way to every other node.
type delivery struct {
	label   string
	start   time.Time
	waiting map[string]bool
	message bool
}

// Run runs the example until ctx ends or cfg.Duration passes, then waits up to DrainLimit for
// the deliveries in flight, prints the summary and closes the nodes. It returns nil when ctx
// ends: an interrupted example is a finished one.
func Run(ctx context.Context, cfg Config) (err error) {
	if err := cfg.check(); err != nil {
		return err
	}
	dir := cfg.Dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "dt-example-*"); err != nil {
			return fmt.Errorf("example: temporary directory: %w", err)
		}
		defer func() { err = errors.Join(err, os.RemoveAll(dir)) }()
	}
	keys, err := loadKeys(filepath.Join(dir, "keys"))
	if err != nil {
		return err
	}
	ex := &example{
		out:     &lineWriter{w: cfg.Out},
		names:   map[dt.NodeID]string{},
		started: make(chan struct{}),
		pending: map[string]*delivery{},
		drained: make(chan struct{}),
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	defer ex.closeNodes()
	if err := ex.openNodes(keys, dir, cfg.BasePort, &wg); err != nil {
		return err
	}
	select {
	case <-ex.started:
	case <-ctx.Done():
		return nil
	}
	// Messages reach the nodes that are linked when they are sent: wait for the whole topology
	// (every link of the example up, both ends) before the first round.
	if !ex.waitLinked(ctx, linkLimit) {
		return ctx.Err()
	}
	ex.out.printf("all 5 nodes started; a round every %s", Round)
	ex.rounds(ctx, cfg.Duration)
	ex.drain(DrainLimit)
	ex.summary()
	return nil
}

// loadKeys loads the keys in dir, generating them on first use, so data kept in Config.Dir stays
// readable by the same network on the next run.
func loadKeys(dir string) (dt.Keys, error) {
	if _, err := os.Stat(filepath.Join(dir, dt.NetworkKeyFile)); errors.Is(err, os.ErrNotExist) {
		if err := dt.GenerateKeys(dir, nil); err != nil {
			return dt.Keys{}, err
		}
	}
	return dt.LoadKeys(dir)
}

// openNodes opens the listeners first, so the dialers can be given their resolved addresses
// when the base port is 0, and the master last.
func (ex *example) openNodes(keys dt.Keys, dir string, base int, wg *sync.WaitGroup) error {
	port := func(i int) string {
		if base == 0 {
			return "0"
		}
		return strconv.Itoa(base + i)
	}
	plans := []struct {
		num    int
		listen string
		dial   int // node number to dial; 0: none
	}{
		{2, net.JoinHostPort("127.0.0.1", port(0)), 0},
		{3, net.JoinHostPort("127.0.0.1", port(1)), 2},
		{4, net.JoinHostPort("127.0.0.1", port(2)), 3},
		{5, net.JoinHostPort("::1", port(3)), 2},
		{1, "", 2},
	}
	ex.nodes = make([]*exNode, 5)
	for _, p := range plans {
		cfg := dt.LocalConfig()
		cfg.Keys, cfg.DataDir = keys, filepath.Join(dir, fmt.Sprintf("node%d", p.num))
		if p.num == 1 {
			cfg.Master = true
		} else {
			cfg.Keys.Master = nil
		}
		if p.listen != "" {
			cfg.Listen = []string{p.listen}
		}
		if p.dial != 0 {
			cfg.Peers = []string{ex.nodes[p.dial-1].n.Addrs()[0].String()}
		}
		n, err := dt.Open(cfg)
		if err != nil {
			return fmt.Errorf("node%d: %w", p.num, err)
		}
		node := &exNode{name: fmt.Sprintf("node%d", p.num), n: n}
		ex.nodes[p.num-1] = node
		ex.names[n.ID()] = node.name
		ex.out.printf("%s id %s listen %v peers %v", node.name, n.ID().Short(), cfg.Listen, cfg.Peers)
	}
	// The events goroutines start once every node is known, so every From can be named.
	for _, node := range ex.nodes {
		wg.Go(func() {
			for ev := range node.n.Events() {
				ex.event(node.name, ev)
			}
		})
	}
	return nil
}

func (ex *example) closeNodes() {
	for _, node := range slices.Backward(ex.nodes) {
		if node != nil {
			node.n.Close()
		}
	}
}

// rounds runs a round now and every Round until ctx ends or duration passes.
func (ex *example) rounds(ctx context.Context, duration time.Duration) {
	if duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, duration)
		defer cancel()
	}
	tick := time.NewTicker(Round)
	defer tick.Stop()
	var added []string
	lastSender := -1
	for round := 1; ctx.Err() == nil; round++ {
		added = ex.addRound(ctx, round, added)
		lastSender = ex.messageRound(ctx, round, lastSender)
		select {
		case <-tick.C:
		case <-ctx.Done():
		}
	}
}

// addRound adds object N and removes the one added 3 rounds earlier.
func (ex *example) addRound(ctx context.Context, round int, added []string) []string {
	master := ex.nodes[0]
	obj, _ := dt.CanonicalJSON(map[string]any{"example": round, "time": time.Now().UTC().Format(time.RFC3339Nano)})
	id := dt.ObjectID(obj)
	// Tracked before the write: the other nodes may apply it before AddObject returns.
	ex.track(id, "add "+shortKey(id), master.name, false)
	if _, err := master.n.AddObject(ctx, json.RawMessage(obj)); err != nil {
		ex.untrack(id)
		if ctx.Err() == nil {
			ex.out.printf("add failed: %v", err)
		}
		return added
	}
	added = append(added, id)
	if len(added) > 3 {
		if err := master.n.RemoveObject(ctx, added[0]); err != nil && ctx.Err() == nil {
			ex.out.printf("remove failed: %v", err)
		}
		added = added[1:]
	}
	return added
}

// messageRound sends a message from a random plain node other than the previous sender, so two
// rounds reach every node.
func (ex *example) messageRound(ctx context.Context, round, lastSender int) int {
	i := 1 + rand.IntN(len(ex.nodes)-1)
	for i == lastSender {
		i = 1 + rand.IntN(len(ex.nodes)-1)
	}
	sender := ex.nodes[i]
	msg, _ := dt.CanonicalJSON(map[string]any{"message": round, "from": sender.name, "time": time.Now().UTC().Format(time.RFC3339Nano)})
	key := "message " + string(msg)
	ex.track(key, fmt.Sprintf("message %d from %s", round, sender.name), sender.name, true)
	if err := sender.n.SendMessage(ctx, json.RawMessage(msg)); err != nil {
		ex.untrack(key)
		if ctx.Err() == nil {
			ex.out.printf("send failed: %v", err)
		}
	}
	return i
}

func (ex *example) track(key, label, from string, message bool) {
	d := &delivery{label: label, start: time.Now(), waiting: map[string]bool{}, message: message}
	for _, node := range ex.nodes {
		if node.name != from {
			d.waiting[node.name] = true
		}
	}
	ex.mu.Lock()
	ex.pending[key] = d
	ex.mu.Unlock()
}

func (ex *example) untrack(key string) {
	ex.mu.Lock()
	delete(ex.pending, key)
	ex.signalIfDrainedLocked()
	ex.mu.Unlock()
}

func (ex *example) signalIfDrainedLocked() {
	if len(ex.pending) == 0 {
		close(ex.drained)
		ex.drained = make(chan struct{})
	}
}

// event prints one event and records the delivery it completes.
func (ex *example) event(name string, ev dt.Event) {
	now := time.Now()
	line := name + " " + ev.Type.String()
	switch ev.Type {
	case dt.EventObjectAdded, dt.EventObjectRemoved:
		line += " " + shortKey(ev.Key) + " " + truncate(string(ev.Object), 60)
	case dt.EventMessageReceived:
		line += " from " + ex.nameOf(ev.From) + " " + truncate(string(ev.Object), 60)
	case dt.EventError:
		line += " " + ev.Origin + ": " + fmt.Sprint(ev.Err)
	}
	ex.out.printf("%s", line)
	switch ev.Type {
	case dt.EventStarted:
		ex.mu.Lock()
		if ex.nStarted++; ex.nStarted == len(ex.nodes) {
			close(ex.started)
		}
		ex.mu.Unlock()
	case dt.EventObjectAdded:
		ex.delivered(ev.Key, name, now)
	case dt.EventMessageReceived:
		ex.delivered("message "+string(ev.Object), name, now)
	}
}

func (ex *example) delivered(key, name string, at time.Time) {
	ex.mu.Lock()
	defer ex.mu.Unlock()
	d := ex.pending[key]
	if d == nil || !d.waiting[name] {
		return
	}
	delete(d.waiting, name)
	if len(d.waiting) > 0 {
		return
	}
	lat := at.Sub(d.start)
	if d.message {
		ex.msgLat = append(ex.msgLat, lat)
	} else {
		ex.addLat = append(ex.addLat, lat)
	}
	ex.out.printf("%s reached %d nodes in %s", d.label, len(ex.nodes)-1, roundDuration(lat))
	delete(ex.pending, key)
	ex.signalIfDrainedLocked()
}

// drain waits until every tracked delivery completed, or max passed.
func (ex *example) drain(max time.Duration) {
	t := time.NewTimer(max)
	defer t.Stop()
	for {
		ex.mu.Lock()
		n, wake := len(ex.pending), ex.drained
		ex.mu.Unlock()
		if n == 0 {
			return
		}
		select {
		case <-wake:
		case <-t.C:
			ex.mu.Lock()
			for _, d := range ex.pending {
				ex.out.printf("%s reached only %d of %d nodes", d.label, len(ex.nodes)-1-len(d.waiting), len(ex.nodes)-1)
			}
			ex.unfinished = len(ex.pending)
			ex.mu.Unlock()
			return
		}
	}
}

func (ex *example) summary() {
	ex.mu.Lock()
	defer ex.mu.Unlock()
	ex.out.printf("adds: %s", latencySummary(ex.addLat))
	ex.out.printf("messages: %s", latencySummary(ex.msgLat))
	if ex.unfinished > 0 {
		ex.out.printf("unfinished deliveries: %d", ex.unfinished)
	}
}

func (ex *example) nameOf(id dt.NodeID) string {
	if name, ok := ex.names[id]; ok {
		return name
	}
	return id.Short()
}

// latencySummary formats count, median and max.
func latencySummary(ds []time.Duration) string {
	if len(ds) == 0 {
		return "none delivered"
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return fmt.Sprintf("%d reached every node; median %s, max %s", len(s), roundDuration(s[len(s)/2]), roundDuration(s[len(s)-1]))
}

func roundDuration(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(10 * time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(100 * time.Microsecond)
	}
	return d.Round(time.Microsecond)
}

// shortKey shows the first 6 hex digits of an id.
func shortKey(k string) string {
	if len(k) <= 6 {
		return k
	}
	return k[:6] + "…"
}

// lineWriter prints whole lines from several goroutines without interleaving them.
type lineWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lineWriter) printf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.w, format+"\n", args...)
}

// waitLinked waits until every node has all its links: the one it dials and those dialed to it.
// The master dials node2, node3 and node5 dial node2, node4 dials node3.
func (ex *example) waitLinked(ctx context.Context, limit time.Duration) bool {
	want := []int{1, 3, 2, 1, 1} // links of node1..node5
	deadline := time.Now().Add(limit)
	for ctx.Err() == nil && time.Now().Before(deadline) {
		ok := true
		for i, node := range ex.nodes {
			ok = ok && node.n.Status().Peers >= want[i]
		}
		if ok {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return ctx.Err() == nil // linked or not, go on after the limit: the summary will show it
}

// truncate shortens s to about n bytes, on a rune boundary, marking the cut with an ellipsis.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
