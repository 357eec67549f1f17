package cappedlog

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"sync"
)

// Writer appends to a file that it keeps at or under a cap. It is safe for concurrent use; each
// Write lands whole and in order (or, when it is larger than half the cap, as its newest part).
type Writer struct {
	mu   sync.Mutex
	f    *os.File // guarded by mu; nil after Close
	size int64    // guarded by mu: bytes in the file
	max  int64
}

var _ io.WriteCloser = (*Writer)(nil)

// Create creates (or truncates, as the original does at each run) the file at path with mode
// 0644 and returns a Writer that keeps it at most max bytes long.
func Create(path string, max int64) (*Writer, error) {
	if max < 2 {
		return nil, fmt.Errorf("%w (got %d)", ErrCap, max)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("cappedlog: %w", err)
	}
	return &Writer{f: f, max: max}, nil
}

// Write appends p. When the file would pass the cap, Write first rewrites it to the newest
// max/2 bytes of the old content followed by p (or, for a p longer than that, only p's newest
// max/2 bytes), dropping any partial first line. It reports len(p) written on success, even
// when part of p was dropped by the rotation: the caller's data was accepted, and the file holds
// the newest part of it.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return 0, ErrClosed
	}
	if w.size+int64(len(p)) <= w.max {
		n, err := w.f.WriteAt(p, w.size)
		w.size += int64(n)
		if err != nil {
			return n, fmt.Errorf("cappedlog: %w", err)
		}
		return n, nil
	}
	if err := w.rotateLocked(p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// rotateLocked replaces the file's content by the newest max/2 bytes of (file ‖ p). The file is
// truncated before the kept bytes are written back, so it is never over the cap, not even
// between the two steps. Called with mu held.
func (w *Writer) rotateLocked(p []byte) error {
	keep := w.max / 2
	fromNew := min(int64(len(p)), keep)
	fromOld := min(keep-fromNew, w.size)
	buf := make([]byte, fromOld, fromOld+fromNew)
	if _, err := w.f.ReadAt(buf, w.size-fromOld); err != nil {
		return fmt.Errorf("cappedlog: read tail: %w", err)
	}
	buf = append(buf, p[int64(len(p))-fromNew:]...)
	buf = trimPartialLine(buf)
	if err := w.f.Truncate(0); err != nil {
		return fmt.Errorf("cappedlog: truncate: %w", err)
	}
	w.size = 0
	n, err := w.f.WriteAt(buf, 0)
	w.size = int64(n)
	if err != nil {
		return fmt.Errorf("cappedlog: %w", err)
	}
	return nil
}

// trimPartialLine drops the bytes before the first newline, which the cut most likely split, so
// the file starts on a whole line. A buffer without a newline, or whose only newline is its last
// byte, is kept as it is: it is all the newest data there is.
func trimPartialLine(b []byte) []byte {
	i := bytes.IndexByte(b, '\n')
	if i < 0 || i == len(b)-1 {
		return b
	}
	return b[i+1:]
}

// Size returns the current length of the file.
func (w *Writer) Size() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.size
}

// Close closes the file. It is safe to call more than once; later Writes return ErrClosed.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return nil
	}
	err := w.f.Close()
	w.f = nil
	if err != nil {
		return fmt.Errorf("cappedlog: %w", err)
	}
	return nil
}
