// Package burstlog logs a limit that is hit many times in a row once per burst, not once per
// hit: an attack that trips a limit a million times a second must not also fill the disk with
// log lines. The exact count belongs in a metric; the log says that it happened and how often.
package burstlog

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// DefaultWindow is how long a burst lasts when Logger.Window is zero.
const DefaultWindow = 10 * time.Second

// Logger logs Msg at the first hit of a burst, then nothing for Window; the first hit after
// that logs again, with how many hits the quiet time swallowed. It needs no goroutine of its
// own, so the count of a burst's tail is reported with the next burst's first line. The zero
// value of the fields other than Log is usable; a nil Log discards.
type Logger struct {
	Log    *slog.Logger
	Level  slog.Level
	Msg    string
	Window time.Duration

	mu         sync.Mutex
	last       time.Time // when a line was last logged
	suppressed uint64    // hits since then that were not logged
}

// Hit notes one hit of the limit; attrs describe this hit (the address, the limit's value).
// It reports whether a line was logged.
func (l *Logger) Hit(ctx context.Context, attrs ...slog.Attr) bool {
	if l == nil || l.Log == nil {
		return false
	}
	now := time.Now()
	window := l.Window
	if window <= 0 {
		window = DefaultWindow
	}
	l.mu.Lock()
	if !l.last.IsZero() && now.Sub(l.last) < window {
		l.suppressed++
		l.mu.Unlock()
		return false
	}
	suppressed := l.suppressed
	l.suppressed = 0
	l.last = now
	l.mu.Unlock()
	if suppressed > 0 {
		attrs = append(attrs, slog.Uint64("also_since_last_line", suppressed))
	}
	l.Log.LogAttrs(ctx, l.Level, l.Msg, attrs...)
	return true
}
