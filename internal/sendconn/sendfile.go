package sendconn

import "errors"

// FileSender is implemented by a ResponseWriter that can send a body straight from a file by
// its descriptor and an offset (sendfile(2) with an offset, as pread(2) reads), so that many
// responses can send from one open descriptor at once: internal/h1's on a plain TCP
// connection. A handler that finds it uses it instead of Write or io.Copy.
type FileSender interface {
	// SendFileAt sends n bytes of the file open as fd from off as (part of) the response's
	// body, after the status line and header section, which leave with the file's first
	// bytes. It returns ErrNotSendable, having sent nothing, when the response cannot be
	// sent so (the body's length not declared, a HEAD, a connection that is not a socket):
	// the caller then writes the body another way. A file that ends before off+n ends the
	// body early with an error wrapping ErrShortFile; the connection is then closed after
	// the response.
	SendFileAt(fd int, off, n int64) (int64, error)
}

var (
	// ErrNotSendable is returned by FileSender.SendFileAt when it sent nothing because the
	// response or connection cannot take a body by sendfile.
	ErrNotSendable = errors.New("sendconn: response cannot be sent from a file")
	// ErrShortFile is returned when a file ends before the bytes asked of it.
	ErrShortFile = errors.New("sendconn: file ends before the bytes to send")
)
