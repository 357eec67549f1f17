package accesslog

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dt-cdn/dt/internal/burstlog"
)

// batchBytes is how much the writer gathers before a write: a batch is written when it grows
// past this or when the queue taken is written out, so a busy log takes few system calls.
const batchBytes = 64 << 10

// Logger is an access log. Log may be called by many goroutines at once and never blocks; Run
// writes. See the package documentation for what is dropped when.
type Logger struct {
	cfg   Config
	queue *ring
	clock clock // the current second's text, shared by every Log
	// kick wakes the writer before its tick when the queue is half full (buffered: one pending
	// request is enough). Waking it for every line would cost each request a goroutine wake-up.
	kick   chan struct{}
	reopen chan struct{} // buffered: one pending request is enough
	ran    atomic.Bool
	// gen counts Reopen calls. Each line carries the count at its Log, and the writer reopens
	// before the first line of a newer count: a line logged after Reopen returns goes to the
	// new file, whatever the order in which the writer sees the two.
	gen atomic.Uint64

	lines, queueFull, writeFailed atomic.Uint64

	// Owned by Run's goroutine, or by New and Close when Run never starts (ran decides).
	out     io.Writer
	file    *os.File // nil for standard output
	fileGen uint64   // the gen the file was opened at
	size    int64    // bytes in file, for MaxSize
	batch   []byte
	batched uint64 // lines in batch
	errLog  burstlog.Logger
}

// New opens the log's file (so that a path that cannot be written fails at start, not at the
// first request) and returns the Logger. Call Run to write.
func New(cfg Config) (*Logger, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	l := &Logger{cfg: cfg, queue: newRing(cfg.Queue), kick: make(chan struct{}, 1), reopen: make(chan struct{}, 1),
		batch: make([]byte, 0, batchBytes+RecordBytes)}
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
		// A goroutine that never blocks (a connection whose requests keep arriving) would
		// otherwise keep its core until the scheduler preempts it, up to 10 ms, while the
		// writer waits to run there and the queue fills: at half, and at each eighth more
		// while the writer has not caught up, it yields.
		runtime.Gosched()
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

// Run writes queued lines until ctx ends, then writes what is queued at that moment, closes
// the file and returns. It writes every Config.FlushInterval, and sooner when the queue is half
// full. Lines logged after it returned are dropped once the queue is full. A
// Logger runs once (ErrRunOnce).
func (l *Logger) Run(ctx context.Context) error {
	if !l.ran.CompareAndSwap(false, true) {
		return ErrRunOnce
	}
	defer l.closeFile()
	tick := time.NewTicker(l.cfg.FlushInterval)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
		case <-l.kick:
		case <-l.reopen:
			l.writePending() // older lines to the old file
			l.reopenAt(l.gen.Load())
		case <-ctx.Done():
			l.writePending()
			return nil
		}
		// Lines the queue refilled with while it was written get no wake-up of their own.
		for more := l.writePending(); more && ctx.Err() == nil; {
			more = l.writePending()
		}
	}
}

// headEvery is how many lines the writer reads before it frees their slots: freeing each at
// once would move the queue's head, which every Log reads, for every line.
const headEvery = 32

// writePending writes the lines queued, in the order of the queue, up to the first one not
// yet ready (still being formatted: it is written the next time), and at most a queue's worth,
// so that requests logging as fast as it writes cannot keep it from Run's loop. It reports
// whether it stopped there with lines ready.
func (l *Logger) writePending() (more bool) {
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
		l.beforeLine(gen, n)
		l.batch, h = q.appendLine(l.batch, h, n)
		l.batched++
		if i%headEvery == 0 {
			q.head.Store(h)
		}
	}
	q.head.Store(h)
	l.flush()
	_, _, more = q.peek(h)
	return more
}

// beforeLine makes room in the batch for a line of n bytes of Reopen count gen: it reopens the
// file first when the line is logged after a Reopen, rotates it first when the line would take
// it past MaxSize, and writes the batch first when the line would take it past batchBytes.
func (l *Logger) beforeLine(gen uint64, n int) {
	if gen > l.fileGen {
		l.reopenAt(gen)
	}
	if l.file != nil && l.cfg.MaxSize > 0 && l.size > 0 && l.size+int64(len(l.batch))+int64(n) > l.cfg.MaxSize {
		l.flush()
		l.rotate()
	}
	if len(l.batch)+n > batchBytes {
		l.flush()
	}
}

// flush writes the batch. On failure its lines are counted as dropped: a full disk loses lines
// rather than holding them, which would stall the queue behind it.
func (l *Logger) flush() {
	if len(l.batch) == 0 {
		return
	}
	n, err := l.out.Write(l.batch)
	l.size += int64(n)
	if err != nil {
		l.writeFailed.Add(l.batched)
		l.errLog.Hit(context.Background(), slog.String("path", l.cfg.Path), slog.Uint64("lines", l.batched), slog.Any("err", err))
	} else {
		l.lines.Add(l.batched)
	}
	l.batch, l.batched = l.batch[:0], 0
}

// open opens the path for appending and notes its size.
func (l *Logger) open() error {
	f, err := os.OpenFile(l.cfg.Path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return fmt.Errorf("accesslog: %w", err)
	}
	var size int64
	if fi, err := f.Stat(); err == nil {
		size = fi.Size()
	}
	l.file, l.out, l.size = f, f, size
	return nil
}

// reopenAt writes the batch and reopens the file, unless it was opened at gen or later.
func (l *Logger) reopenAt(gen uint64) {
	if gen <= l.fileGen {
		return
	}
	l.flush()
	l.reopenFile()
	l.fileGen = gen
}

// reopenFile closes the file and opens its path again. If the path cannot be opened the old
// file stays in use (lines keep going to the renamed file rather than nowhere).
func (l *Logger) reopenFile() {
	if l.file == nil {
		return
	}
	old := l.file
	if err := l.open(); err != nil {
		l.cfg.Logger.Warn("Access log not reopened; writing on to the old file", slog.Any("err", err))
		return
	}
	if err := old.Close(); err != nil {
		l.cfg.Logger.Warn("Access log: closing the old file failed", slog.Any("err", err))
	}
}

// rotate renames FILE.(Keep-1) to FILE.Keep, …, FILE to FILE.1, and opens a new FILE. A failed
// rename is logged and the writing goes on: losing rotation is better than losing the log.
func (l *Logger) rotate() {
	p := l.cfg.Path
	for i := l.cfg.Keep - 1; i >= 1; i-- {
		if err := os.Rename(p+"."+strconv.Itoa(i), p+"."+strconv.Itoa(i+1)); err != nil && !errors.Is(err, os.ErrNotExist) {
			l.cfg.Logger.Warn("Access log rotation: rename failed", slog.Any("err", err))
		}
	}
	if err := os.Rename(p, p+".1"); err != nil {
		l.cfg.Logger.Warn("Access log rotation: rename failed", slog.Any("err", err))
	}
	l.reopenFile()
}

// closeFile closes the file, if any.
func (l *Logger) closeFile() {
	if l.file != nil {
		if err := l.file.Close(); err != nil {
			l.cfg.Logger.Warn("Access log: close failed", slog.Any("err", err))
		}
		l.file = nil
	}
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
