//go:build !linux

package sendconn

import "syscall"

// SendFile sends nothing where sendfile(2) with an offset is not wired up: it returns
// ErrNotSendable, and the caller writes the body another way.
func SendFile(rc syscall.RawConn, head []byte, fd int, off, n int64, arm func() error) (int64, error) {
	return 0, ErrNotSendable
}
