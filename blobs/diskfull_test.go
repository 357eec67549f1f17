package blobs

import (
	"bytes"
	"errors"
	"io"
	"sync/atomic"
	"syscall"
	"testing"
)

// quotaWriter lets limit bytes through to w in total, then fails as a full disk does: a short
// write followed by ENOSPC.
type quotaWriter struct {
	w    io.Writer
	left *atomic.Int64
}

func (q quotaWriter) Write(p []byte) (int, error) {
	left := q.left.Add(-int64(len(p)))
	if left >= 0 {
		return q.w.Write(p)
	}
	room := max(0, int64(len(p))+left)
	q.left.Store(0)
	n, err := q.w.Write(p[:room])
	if err != nil {
		return n, err
	}
	return n, syscall.ENOSPC
}

// TestFullDiskInjected makes every temporary file's writer fail with ENOSPC partway, through
// Options.WrapWriter, and checks each write path returns that error and leaves nothing.
func TestFullDiskInjected(t *testing.T) {
	var quota atomic.Int64
	s := newStore(t, Options{WrapWriter: func(w io.Writer) io.Writer {
		return quotaWriter{w: w, left: &quota}
	}})
	data, h := randomBlob(newRand(t), 1<<20)
	for _, tt := range []struct {
		name string
		put  func() error
	}{
		{"Put", func() error { _, err := s.Put(h, bytes.NewReader(data)); return err }},
		{"PutBytes", func() error { return s.PutBytes(h, data) }},
		{"Write", func() error { _, _, err := s.Write(bytes.NewReader(data)); return err }},
		{"Batch.Put", func() error {
			b := s.NewBatch()
			defer b.Discard()
			_, err := b.Put(h, bytes.NewReader(data))
			return err
		}},
		{"Batch.PutBytes", func() error {
			b := s.NewBatch()
			defer b.Discard()
			return b.PutBytes(h, data)
		}},
	} {
		for _, limit := range []int64{0, 1, 100 << 10, int64(len(data)) - 1} {
			quota.Store(limit)
			err := tt.put()
			if !errors.Is(err, syscall.ENOSPC) {
				t.Errorf("%s with %d bytes free: %v, want ENOSPC", tt.name, limit, err)
			}
			if s.Has(h) {
				t.Fatalf("%s with %d bytes free: blob visible", tt.name, limit)
			}
			assertEmpty(t, s.Dir())
		}
	}
	// Once there is room again the same blob goes in.
	quota.Store(int64(len(data)))
	if err := s.PutBytes(h, data); err != nil {
		t.Fatal(err)
	}
}

// TestWriterErrorIsWrapped checks that a non-ENOSPC I/O error from the disk also comes back
// wrapped, labelled as a write error.
func TestWriterErrorIsWrapped(t *testing.T) {
	s := newStore(t, Options{WrapWriter: func(io.Writer) io.Writer { return errWriter{syscall.EIO} }})
	data := []byte("x")
	err := s.PutBytes(Sum(data), data)
	if !errors.Is(err, syscall.EIO) {
		t.Fatalf("PutBytes: %v, want EIO", err)
	}
	assertEmpty(t, s.Dir())
}

type errWriter struct{ err error }

func (w errWriter) Write([]byte) (int, error) { return 0, w.err }
