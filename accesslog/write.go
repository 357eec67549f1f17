package accesslog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
)

// writeChunks writes the chunks the taker hands it, in order, until full is closed: it
// reopens the file before a chunk of a newer Reopen count, and gives each chunk back to be
// filled again.
func (l *Logger) writeChunks() {
	for c := range l.full {
		if c.gen > l.fileGen {
			l.reopenAt(c.gen)
		}
		l.writeChunk(c)
		l.handed.Add(-1)
		if c.b != nil {
			c.b, c.lines = c.b[:0], 0
			l.free <- c // never blocks: free has room for every chunk
		}
	}
}

// writeChunk writes c's lines, rotating the file first whenever the next line would take it
// past Config.MaxSize (a line longer than MaxSize alone in its file).
func (l *Logger) writeChunk(c *chunk) {
	b, lines := c.b, c.lines
	for len(b) > 0 {
		if l.file == nil || l.cfg.MaxSize <= 0 || l.size+int64(len(b)) <= l.cfg.MaxSize {
			l.write(b, lines)
			return
		}
		room := max(l.cfg.MaxSize-l.size, 0)
		cut := bytes.LastIndexByte(b[:min(int64(len(b)), room)], '\n') + 1 // the whole lines that fit
		if cut == 0 {
			if l.size > 0 {
				l.rotate()
				continue
			}
			cut = bytes.IndexByte(b, '\n') + 1 // a line longer than MaxSize, in a file of its own
			if cut == 0 {
				cut = len(b)
			}
		}
		part := uint64(bytes.Count(b[:cut], []byte{'\n'}))
		l.write(b[:cut], part)
		b, lines = b[cut:], lines-part
	}
}

// write writes b, which holds the given number of lines. On failure they are counted as
// dropped: a full disk loses lines rather than holding them, which would stall the queue.
func (l *Logger) write(b []byte, lines uint64) {
	n, err := l.out.Write(b)
	l.size += int64(n)
	if err != nil {
		l.writeFailed.Add(lines)
		l.errLog.Hit(context.Background(), slog.String("path", l.cfg.Path), slog.Uint64("lines", lines), slog.Any("err", err))
		return
	}
	l.lines.Add(lines)
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

// reopenAt reopens the file, unless it was opened at gen or later.
func (l *Logger) reopenAt(gen uint64) {
	if gen <= l.fileGen {
		return
	}
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

