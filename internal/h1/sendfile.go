package h1

import (
	"errors"

	"github.com/dt-cdn/dt/internal/sendconn"
)

// SendFileAt sends n bytes of the file open as fd from off as part of the body, by
// sendconn.SendFile: the output gathered (the header section) leaves with the file's first
// bytes, in two system calls and no copy, and the file's position is left alone. It returns
// sendconn.ErrNotSendable, having sent nothing, unless the header section is written, the
// body's length is declared and room is left in it for n bytes, and the connection is a
// socket.
func (w *response) SendFileAt(fd int, off, n int64) (int64, error) {
	if w.status == 0 {
		w.WriteHeader(200)
	}
	c := w.c
	if c.werr != nil {
		return 0, c.werr
	}
	if c.raw == nil || !w.headerSent || !w.bodyAllowed || w.isHEAD || w.clen < 0 ||
		w.written+n > w.clen || len(c.stage) > 0 {
		return 0, sendconn.ErrNotSendable
	}
	sent, err := sendconn.SendFile(c.raw, c.out, fd, off, n, c.armWrite)
	c.resetOut()
	w.written += sent
	if err != nil && !errors.Is(err, sendconn.ErrShortFile) {
		return sent, c.writeFailed(err)
	}
	return sent, err
}
