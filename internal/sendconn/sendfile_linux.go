package sendconn

import (
	"fmt"
	"syscall"
)

// SendFile writes head, then n bytes of the file open as fd from off, to the socket rc, with
// the fewest system calls: head by one send(2) with MSG_MORE, so that it waits in the socket
// and leaves in the same segments as the file's first bytes (what TCP_CORK would do, without
// the two setsockopt(2) calls), then the file by sendfile(2) at an offset, which leaves the
// file's position alone, so that any number of responses can send from one descriptor. Before
// each step of at most sendStep bytes, arm sets the write deadline (SendTimeout per step); the
// waits for the socket to drain (below TCP_NOTSENT_LOWAT) end at that deadline.
//
// A body of more than one step is sent under TCP_CORK instead of MSG_MORE: the ends of its
// sendfile calls then leave in full segments too, and the two setsockopt(2) calls are nothing
// next to such a body.
//
// It returns the file's bytes sent. A file that ends early gives an error wrapping
// ErrShortFile; an error of the socket or the deadline is returned as rc gives it.
func SendFile(rc syscall.RawConn, head []byte, fd int, off, n int64, arm func() error) (int64, error) {
	if n > sendStep && setCork(rc, true) {
		defer setCork(rc, false)
	}
	var sent int64
	for first := true; first || sent < n; first = false {
		if err := arm(); err != nil {
			return sent, err
		}
		step := min(n-sent, sendStep)
		var werr error
		err := rc.Write(func(sock uintptr) bool {
			var done bool
			head, done, werr = sendHead(int(sock), head, step > 0)
			if !done || werr != nil {
				return werr != nil
			}
			for step > 0 {
				pos := off + sent
				k, err := syscall.Sendfile(int(sock), fd, &pos, int(step))
				switch {
				case err == syscall.EINTR:
					continue
				case err == syscall.EAGAIN:
					return false
				case err != nil:
					werr = err
					return true
				case k == 0:
					werr = fmt.Errorf("sendconn: sendfile at %d: %w", off+sent, ErrShortFile)
					return true
				}
				sent += int64(k)
				step -= int64(k)
			}
			return true
		})
		if err == nil {
			err = werr
		}
		if err != nil {
			return sent, err
		}
	}
	return sent, nil
}

// sendHead sends what is left of head, with MSG_MORE when more follows. It returns what is
// still to send and whether all of it left; false without an error means the socket is full.
func sendHead(sock int, head []byte, more bool) ([]byte, bool, error) {
	flags := 0
	if more {
		flags = syscall.MSG_MORE
	}
	for len(head) > 0 {
		k, err := syscall.SendmsgN(sock, head, nil, nil, flags|syscall.MSG_NOSIGNAL)
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			return head, false, nil
		case err != nil:
			return head, false, err
		}
		head = head[k:]
	}
	return head, true, nil
}

// setCork sets or clears TCP_CORK on rc's socket, and reports whether it did.
func setCork(rc syscall.RawConn, on bool) bool {
	v := 0
	if on {
		v = 1
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_CORK, v)
	}); err != nil {
		return false
	}
	return serr == nil
}
