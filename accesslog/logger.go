package accesslog

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dt-cdn/dt/internal/burstlog"
)

// chunkBytes is the size of a chunk: the lines the taker moves out of the queue gather in
// chunks, and each is written with one system call.
const chunkBytes = 64 << 10

// Logger is an access log. Log may be called by many goroutines at once and never blocks; Run
// writes. See the package documentation for what is dropped when.
type Logger struct {
	cfg   Config
	queue *ring
	clock clock // the current second's text, shared by every Log
	// kick wakes the taker before its tick when the queue is half full (buffered: one pending
	// request is enough). Waking it for every line would cost each request a goroutine wake-up.
	kick   chan struct{}
	reopen chan struct{} // buffered: one pending request is enough
	ran    atomic.Bool
	// gen counts Reopen calls. Each line carries the count at its Log, and the file is reopened
	// before the first line of a newer count: a line logged after Reopen returns goes to the
	// new file, whatever the order in which the writer sees the two.
	gen atomic.Uint64

	lines, queueFull, writeFailed atomic.Uint64

	// The taker (Run's goroutine) moves lines from the queue into chunks and hands them to the
	// file writer (writeChunks) in order through full; written chunks come back through free.
	cur       *chunk // being filled, nil for none; the taker's
	full      chan *chunk
	free      chan *chunk
	made      int          // chunks allocated, at most maxChunks; the taker's
	maxChunks int          // Config.Buffer in chunks
	handed    atomic.Int64 // chunks handed to the file writer and not yet written

	// The file writer's, or New's and Close's when Run never starts (ran decides).
	out     io.Writer
	file    *os.File // nil for standard output
	fileGen uint64   // the gen the file was opened at
	size    int64    // bytes in file, for MaxSize
	errLog  burstlog.Logger
}

// chunk is lines taken from the queue, of one Reopen count, to be written at once. A chunk
// without a buffer only carries a Reopen to the file writer.
type chunk struct {
	b     []byte
	lines uint64
	gen   uint64
}

// New opens the log's file (so that a path that cannot be written fails at start, not at the
// first request) and returns the Logger. Call Run to write.
func New(cfg Config) (*Logger, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	maxChunks := max(2, int(cfg.Buffer/chunkBytes)) // one being written, one being filled
	l := &Logger{cfg: cfg, queue: newRing(cfg.Queue), kick: make(chan struct{}, 1), reopen: make(chan struct{}, 1),
		maxChunks: maxChunks, full: make(chan *chunk, maxChunks+reopenMarks), free: make(chan *chunk, maxChunks)}
	l.errLog = burstlog.Logger{Log: cfg.Logger, Level: slog.LevelWarn, Msg: "Access log lines dropped"}
	if cfg.Path == Stdout {
		l.out = cfg.Stdout
		if l.out == nil {
			l.out = os.Stdout
		}
	} else if err := l.open(); err != nil {
		return nil, err
	}
	if cfg.Registerer != nil {
		if err := l.register(cfg.Registerer); err != nil {
			l.closeFile()
			return nil, err
		}
	}
	return l, nil
}

// Log formats e's line and queues it to be written, or drops and counts it when the queue is
// full. It keeps no reference to e or its strings, and never blocks on the writer.
func (l *Logger) Log(e *Entry) {
	var r record
	r.set(e)
	gen := l.gen.Load()
	t, ok, half := l.queue.claim(1)
	if !ok {
		l.queueFull.Add(1)
		return
	}
	// A claimed slot must be committed whatever happens, or the writer, which reads the
	// slots in order, would wait for it forever: one that formatting panicked in is skipped.
	committed := false
	defer func() {
		if !committed {
			l.queue.commit(t, skipSlot, gen)
		}
	}()
	line := appendLine(l.queue.room(t), &r, l.cfg.Format, l.cfg.TruncateIP, &l.clock)
	committed = true
	if len(line) <= slotData { // formatted in place, the common case
		l.queue.commit(t, uint32(len(line)), gen)
	} else { // formatted on the heap: copied into slots of its own, the first left empty
		l.queue.commit(t, skipSlot, gen)
		var more bool
		if ok, more = l.queue.put(line, gen); !ok {
			l.queueFull.Add(1)
		}
		half = half || more
	}
	if half {
		l.wake()
	}
}

// wake wakes the writer before its tick. Waking it for every line would cost each request a
// goroutine wake-up.
func (l *Logger) wake() {
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

// Reopen asks the writer to close the file and open its path again: for logrotate, which
// renames the file and then sends SIGHUP. Lines logged before go to the old file, lines logged
// after Reopen returns to the new one. It does not wait for the reopen.
func (l *Logger) Reopen() {
	l.gen.Add(1)
	select {
	case l.reopen <- struct{}{}:
	default:
	}
}

// Stats are a Logger's counts since New.
type Stats struct {
	// Lines were written.
	Lines uint64
	// QueueFull were dropped because the queue was full.
	QueueFull uint64
	// WriteFailed were dropped because their write failed.
	WriteFailed uint64
}

// Stats returns the Logger's counts.
func (l *Logger) Stats() Stats {
	return Stats{Lines: l.lines.Load(), QueueFull: l.queueFull.Load(), WriteFailed: l.writeFailed.Load()}
}

// ErrRunOnce is returned by a second call of Logger.Run.
var ErrRunOnce = errors.New("accesslog: a Logger runs once")

// reopenMarks bounds the Reopens waiting for the file writer without a line after them; more
// while it is stalled are merged into the next line's.
const reopenMarks = 8

// Run writes queued lines until ctx ends, then writes what is queued at that moment, closes
// the file and returns. It takes the queue's lines every Config.FlushInterval, sooner when the
// queue is half full, into chunks of up to 64 KiB that a second goroutine writes, so that a
// slow write holds neither the queue nor a request. Lines logged after it returned are dropped
// once the queue is full. A Logger runs once (ErrRunOnce).
func (l *Logger) Run(ctx context.Context) error {
	if !l.ran.CompareAndSwap(false, true) {
		return ErrRunOnce
	}
	written := make(chan struct{})
	go func() {
		defer close(written)
		l.writeChunks()
	}()
	defer func() {
		close(l.full)
		<-written
		l.closeFile()
	}()
	tick := time.NewTicker(l.cfg.FlushInterval)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
		case <-l.kick:
		case <-l.reopen:
			l.takePending() // older lines to the old file
			l.handOff()
			select {
			case l.full <- &chunk{gen: l.gen.Load()}:
				l.handed.Add(1)
			default: // the writer is stalled with reopenMarks waiting: the next line reopens
			}
		case <-ctx.Done():
			l.takePending()
			l.handOff()
			return nil
		}
		// Lines the queue refilled with while it was taken get no wake-up of their own.
		for more := l.takePending(); more && ctx.Err() == nil; {
			more = l.takePending()
		}
		if l.handed.Load() == 0 { // the writer is idle: write now rather than at the next tick
			l.handOff()
		}
	}
}

// headEvery is how many lines the taker reads before it frees their slots: freeing each at
// once would move the queue's head, which every Log reads, for every line.
const headEvery = 32

// takePending moves the lines queued into chunks, in the order of the queue, up to the first
// one not yet ready (still being formatted: it is taken the next time), and at most a queue's
// worth, so that requests logging as fast as it takes cannot keep it from Run's loop. A line
// that finds every chunk taken (the disk is slow) is dropped and counted. It reports whether
// it stopped with lines ready.
func (l *Logger) takePending() (more bool) {
	q := l.queue
	h := q.head.Load()
	end := h + uint64(len(q.slots))
	for i := 1; h < end; i++ {
		n, gen, ok := q.peek(h)
		if !ok {
			break
		}
		if uint32(n) == skipSlot {
			h++
			continue
		}
		if l.roomFor(gen, n) {
			l.cur.b, h = q.appendLine(l.cur.b, h, n)
			l.cur.lines++
		} else {
			h += slotsFor(n)
			l.queueFull.Add(1)
		}
		if i%headEvery == 0 {
			q.head.Store(h)
		}
	}
	q.head.Store(h)
	_, _, more = q.peek(h)
	return more
}

// roomFor makes the current chunk one that takes a line of n bytes and Reopen count gen,
// handing the current one to the writer when it is full or of another count. It reports false
// when no chunk is free: the writer is behind by Config.Buffer.
func (l *Logger) roomFor(gen uint64, n int) bool {
	if c := l.cur; c != nil && (c.gen == gen || c.lines == 0) && len(c.b)+n <= cap(c.b) {
		c.gen = gen
		return true
	}
	l.handOff()
	select {
	case l.cur = <-l.free:
	default:
		if l.made == l.maxChunks {
			return false
		}
		l.made++
		l.cur = &chunk{b: make([]byte, 0, chunkBytes)}
	}
	l.cur.gen = gen
	return true
}

// handOff hands the current chunk, unless empty, to the file writer. It never blocks: full has
// room for every chunk.
func (l *Logger) handOff() {
	if l.cur == nil || l.cur.lines == 0 {
		return
	}
	l.handed.Add(1)
	l.full <- l.cur
	l.cur = nil
}

// Close closes the file of a Logger whose Run never started (New opened it); Run closes it
// itself when it returns. Safe to call more than once.
func (l *Logger) Close() error {
	if l.ran.CompareAndSwap(false, true) {
		l.closeFile()
	}
	return nil
}

// register adds the Logger's metrics to reg.
func (l *Logger) register(reg prometheus.Registerer) error {
	lines := prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "dt", Subsystem: l.cfg.Subsystem, Name: "access_log_lines_total",
		Help: "Access log lines written."}, func() float64 { return float64(l.lines.Load()) })
	dropped := &droppedCollector{l: l, desc: prometheus.NewDesc(prometheus.BuildFQName("dt", l.cfg.Subsystem, "access_log_dropped_total"),
		"Access log lines dropped: queue_full when the writer was behind (a slow disk), write_failed when the write failed (a full disk). Responses never wait for the log.",
		[]string{"reason"}, nil)}
	for _, c := range []prometheus.Collector{lines, dropped} {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("accesslog: register metrics: %w", err)
		}
	}
	return nil
}

// droppedCollector reports the dropped counts by reason.
type droppedCollector struct {
	l    *Logger
	desc *prometheus.Desc
}

func (c *droppedCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *droppedCollector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(c.desc, prometheus.CounterValue, float64(c.l.queueFull.Load()), "queue_full")
	ch <- prometheus.MustNewConstMetric(c.desc, prometheus.CounterValue, float64(c.l.writeFailed.Load()), "write_failed")
}
