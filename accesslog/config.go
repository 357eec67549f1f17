package accesslog

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Format is how a line is written.
type Format int

// The formats of a line.
const (
	// JSON writes one JSON object per line (JSON lines), with the fields named in the package
	// documentation of Entry.
	JSON Format = iota
	// Combined writes the Combined Log Format of Apache and nginx:
	//	client - - [time] "method uri proto" status bytes "referer" "user agent"
	// Quotes, backslashes and bytes outside printable ASCII in its fields are escaped as \xHH,
	// as nginx does.
	Combined
)

// ParseFormat reads a format's name: "json" or "combined".
func ParseFormat(s string) (Format, error) {
	switch s {
	case "json":
		return JSON, nil
	case "combined":
		return Combined, nil
	}
	return 0, fmt.Errorf("accesslog: unknown format %q, want json or combined", s)
}

// String returns the format's name, as ParseFormat reads it.
func (f Format) String() string {
	if f == Combined {
		return "combined"
	}
	return "json"
}

// Defaults of Config.
const (
	// DefaultQueue is the number of slots of RecordBytes lines wait in before they are written:
	// 4 MiB, 4,096 common lines, which holds a busy edge's responses (50,000 a second) for 80 ms
	// of a disk that stopped, and wakes the writer once per 2,048 lines under load. A slot's
	// memory is touched only as far as its line reaches.
	DefaultQueue = 4096
	// DefaultFlushInterval is how long a line may wait before it is written when the queue is
	// not half full: short enough that `tail -f` follows the traffic, long enough that a quiet
	// edge writes a few times a second, not once per request.
	DefaultFlushInterval = 200 * time.Millisecond
	// DefaultKeep is the number of old files kept when rotating by size: with a MaxSize of
	// 100 MiB, half a gigabyte of history, as logrotate's common "rotate 5".
	DefaultKeep = 5
	// Stdout is the Config.Path that writes to standard output (Config.Stdout).
	Stdout = "-"
)

// Config configures a Logger. New does not modify it.
type Config struct {
	// Path is the file the log is appended to (created with mode 0640 if missing), or Stdout
	// ("-") for standard output. Required.
	Path string
	// Format is how lines are written. Zero: JSON.
	Format Format
	// MaxSize rotates the file once a line would take it past MaxSize bytes: FILE becomes
	// FILE.1, FILE.1 becomes FILE.2, and so on up to Keep. Rotating here needs no logrotate but
	// stalls the writer (never a request) for the renames. Zero: never (rotate with logrotate
	// and Reopen instead). Ignored for standard output.
	MaxSize int64
	// Keep is how many old files rotation by size keeps; older ones are removed. Zero:
	// DefaultKeep.
	Keep int
	// TruncateIP logs the client's address truncated to its /24 (IPv4) or /48 (IPv6). False:
	// the whole address.
	TruncateIP bool
	// Queue is the number of slots of RecordBytes the lines waiting for the writer take: a line
	// takes one, a line longer than a slot more. Past it lines are dropped and counted (a line
	// longer than the whole queue always is). Larger rides out longer stalls of the disk, for
	// RecordBytes each, allocated at New. Zero: DefaultQueue.
	Queue int
	// FlushInterval is how long a line may wait before it is written; the writer writes sooner
	// when the queue is half full. Shorter shows lines sooner for more writes on a quiet edge.
	// Zero: DefaultFlushInterval.
	FlushInterval time.Duration
	// Stdout is where Path "-" writes. Nil: os.Stdout.
	Stdout io.Writer
	// Logger receives the writer's own errors (a failed write or reopen), at most one line per
	// burst. Nil discards.
	Logger *slog.Logger
	// Registerer receives the metrics dt_<Subsystem>_access_log_lines_total and
	// dt_<Subsystem>_access_log_dropped_total{reason="queue_full"|"write_failed"}. Nil: none.
	Registerer prometheus.Registerer
	// Subsystem names the metrics (dt_edge_… for "edge"). Empty: "edge".
	Subsystem string
}

// validate checks cfg before anything opens.
func (c *Config) validate() error {
	var errs []error
	if c.Path == "" {
		errs = append(errs, errors.New("accesslog: Config.Path is required"))
	}
	if c.Format != JSON && c.Format != Combined {
		errs = append(errs, fmt.Errorf("accesslog: unknown Config.Format %d", c.Format))
	}
	if c.MaxSize < 0 || c.Keep < 0 || c.Queue < 0 || c.FlushInterval < 0 {
		errs = append(errs, errors.New("accesslog: Config.MaxSize, Keep, Queue and FlushInterval cannot be negative"))
	}
	return errors.Join(errs...)
}

// withDefaults returns c with its zero fields set.
func (c Config) withDefaults() Config {
	if c.Keep == 0 {
		c.Keep = DefaultKeep
	}
	if c.Queue == 0 {
		c.Queue = DefaultQueue
	}
	if c.FlushInterval == 0 {
		c.FlushInterval = DefaultFlushInterval
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Subsystem == "" {
		c.Subsystem = "edge"
	}
	return c
}
