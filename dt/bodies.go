package dt

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/dt-cdn/dt/blobs"
)

// Bodies that do not travel inline: fetched on streams of their own from the peer that announced
// the record, verified by hash as they are stored.

// runFetcher fetches bodies that did not travel inline, from the peer that sent their record.
func (l *link) runFetcher() {
	for {
		job, ok := l.fetches.take(l.ctx)
		if !ok {
			return
		}
		if !l.n.store.hasBlob(job.rec.Hash) {
			if err := l.fetchBody(job.rec); err != nil {
				if l.ctx.Err() == nil {
					if errors.Is(err, ErrBodyMismatch) || errors.Is(err, ErrMalformed) {
						l.fail(err)
					} else {
						l.close(fmt.Errorf("dt: fetch body of %s: %w", job.rec.Key, err))
					}
				}
				return
			}
		}
		if err := l.n.submit(l.ctx, applyOp{rec: job.rec, id: job.id, origin: l.peer}); err != nil {
			return
		}
		l.settle(job.seq, job.want)
	}
}

// Body streams: the requester writes bodyRequest and the 32-byte hash; the server answers with a
// status byte and, for bodyFound, a uvarint length and the body.
const (
	bodyRequest  = 1
	bodyFound    = 0
	bodyNotFound = 1
)

func (l *link) fetchBody(rec *Record) error {
	s, err := l.sess.OpenStream()
	if err != nil {
		return err
	}
	defer s.Close()
	_ = s.SetDeadline(time.Now().Add(bodyStreamTimeout))
	if _, err := s.Write(append([]byte{bodyRequest}, rec.Hash[:]...)); err != nil {
		return err
	}
	r := &deadlineReader{s: s}
	var status [1]byte
	if _, err := io.ReadFull(r, status[:]); err != nil {
		return err
	}
	if status[0] != bodyFound {
		return fmt.Errorf("peer does not have body %x", rec.Hash[:6])
	}
	size, err := binary.ReadUvarint(byteReader{r})
	if err != nil {
		return fmt.Errorf("%w: body length: %w", ErrMalformed, err)
	}
	if size != rec.Size {
		return fmt.Errorf("%w: body of %d bytes, record says %d", ErrBodyMismatch, size, rec.Size)
	}
	if _, err := l.n.store.blobs.Put(blobs.Hash(rec.Hash), io.LimitReader(r, int64(size))); err != nil {
		if errors.Is(err, blobs.ErrHashMismatch) {
			return fmt.Errorf("%w: %w", ErrBodyMismatch, err)
		}
		return err
	}
	l.n.metrics.bodiesFetched.Inc()
	return nil
}

// deadlineReader extends a stream's deadline as data arrives, so a large body may take as long as
// it needs while a stalled one fails after bodyStreamTimeout.
type deadlineReader struct {
	s interface {
		io.Reader
		SetDeadline(time.Time) error
	}
}

func (r *deadlineReader) Read(p []byte) (int, error) {
	n, err := r.s.Read(p)
	if n > 0 {
		_ = r.s.SetDeadline(time.Now().Add(bodyStreamTimeout))
	}
	return n, err
}

type byteReader struct{ io.Reader }

func (b byteReader) ReadByte() (byte, error) {
	var p [1]byte
	_, err := io.ReadFull(b.Reader, p[:])
	return p[0], err
}

// serveBodies answers the peer's body streams.
func (l *link) serveBodies() {
	for {
		s, err := l.sess.AcceptStream()
		if err != nil {
			return
		}
		l.wg.Go(func() {
			defer s.Close()
			_ = s.SetDeadline(time.Now().Add(bodyStreamTimeout))
			var req [33]byte
			if _, err := io.ReadFull(s, req[:]); err != nil || req[0] != bodyRequest {
				return
			}
			var h [32]byte
			copy(h[:], req[1:])
			if err := l.n.writeBody(s, h); err != nil {
				l.n.log.Debug("Serve body", slog.Any("err", err))
			}
		})
	}
}

// writeBody sends one body on a body stream.
func (n *Node) writeBody(s interface {
	io.Writer
	SetDeadline(time.Time) error
}, h [32]byte) error {
	f, err := n.store.blobs.Open(blobs.Hash(h))
	if err != nil {
		// Only bodies in the blob store travel on body streams; inline ones go with their records.
		_, _ = s.Write([]byte{bodyNotFound})
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if _, err := s.Write(binary.AppendUvarint([]byte{bodyFound}, uint64(st.Size()))); err != nil {
		return err
	}
	buf := make([]byte, 64<<10)
	for {
		k, rerr := f.Read(buf)
		if k > 0 {
			_ = s.SetDeadline(time.Now().Add(bodyStreamTimeout))
			if _, err := s.Write(buf[:k]); err != nil {
				return err
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return rerr
		}
	}
}
