// Package sendconn gives a server's TCP connections a deadline on every step of a write, and a
// cork for net/http's responses.
//
// net/http's server has only a WriteTimeout on a whole response, which would cut off a long
// download on a slow line, and none by default, which leaves a client that stops reading holding
// its connection, goroutine and buffers forever. A Conn sets a write deadline of its timeout
// before each step of at most 256 KiB (nginx's send_timeout, and internal/h1's SendTimeout): a
// slow but steady client is served, a stalled one is cut off. It sits under TLS as well, so
// that HTTP/2 and HTTPS HTTP/1.1 get it too. A deadline the server sets itself stands while it
// is earlier than the step's.
//
// The cork (Cork, under ConnContext) holds a net/http response's writes and sends them in one
// writev, as nginx's tcp_nopush does; the connections also get their unsent bytes bounded
// (TCP_NOTSENT_LOWAT, see NotSentLowat).
//
// SendFile sends a header and a span of a file with two system calls, send(2) with MSG_MORE
// and sendfile(2) at an offset, under the same deadline per step; internal/h1's responses
// offer it to handlers as a FileSender.
//
// Listener hands out such connections; the connection caps' wrappers (internal/connlimit) are
// seen through, and their Close is kept.
package sendconn

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// sendStep is the most a sendConn writes under one deadline, so that the timeout bounds the
// progress of each step rather than a whole body: at a minute, a client that takes less than
// about 4 KiB/s is cut off, and a faster one is not. It is internal/h1's step.
const sendStep = 256 << 10

// sendConn is a TCP connection whose writes cannot block for longer than a timeout without
// progress: before each step of at most sendStep bytes it sets the write deadline timeout from
// now (moving it only once it is an eighth stale, so that a busy connection does not reset it on
// every write).
//
// A deadline the server sets itself (SetWriteDeadline, SetDeadline) stands while it is earlier
// than the step's: servers set short ones to close connections (a TLS close_notify, an HTTP/2
// GOAWAY), and a step must not put those off.
type sendConn struct {
	*net.TCPConn
	// outer is what Close closes: the connection the listener handed out, which may have more
	// to do than close the socket (give back its slot under the connection caps).
	outer   io.Closer
	timeout time.Duration // zero: no deadline but the server's
	expired func()        // called once when a step's deadline ends a write; nil for none
	fired   atomic.Bool

	mu       sync.Mutex
	explicit time.Time // guarded by mu: the write deadline the server set; zero for none
	armed    time.Time // guarded by mu: the write deadline set on the socket
}

func newSendConn(tc *net.TCPConn, outer io.Closer, timeout time.Duration, expired func()) *sendConn {
	return &sendConn{TCPConn: tc, outer: outer, timeout: timeout, expired: expired}
}

// check passes a write's error on, first calling expired if it is the step's deadline that
// ended the write (not one the server set).
func (c *sendConn) check(err error) error {
	if err == nil || c.expired == nil || !errors.Is(err, os.ErrDeadlineExceeded) {
		return err
	}
	c.mu.Lock()
	ours := !c.armed.IsZero() && !c.armed.Equal(c.explicit)
	c.mu.Unlock()
	if ours && !c.fired.Swap(true) {
		c.expired()
	}
	return err
}

func (c *sendConn) Close() error { return c.outer.Close() }

func (c *sendConn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.explicit, c.armed = t, t
	return c.TCPConn.SetWriteDeadline(t)
}

func (c *sendConn) SetDeadline(t time.Time) error {
	if err := c.TCPConn.SetReadDeadline(t); err != nil {
		return err
	}
	return c.SetWriteDeadline(t)
}

// arm sets the write deadline for the next step.
func (c *sendConn) arm() error {
	if c.timeout <= 0 {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	want := now.Add(c.timeout)
	if !c.explicit.IsZero() && c.explicit.Before(want) {
		want = c.explicit
	} else if !c.armed.IsZero() && !c.armed.After(want) && c.armed.Sub(now) > c.timeout-c.timeout/8 {
		return nil // fresh enough
	}
	if want.Equal(c.armed) {
		return nil
	}
	c.armed = want
	return c.TCPConn.SetWriteDeadline(want)
}

func (c *sendConn) Write(p []byte) (int, error) {
	var sent int
	for len(p) > 0 {
		if err := c.arm(); err != nil {
			return sent, err
		}
		step := p[:min(len(p), sendStep)]
		n, err := c.TCPConn.Write(step)
		sent += n
		if err != nil {
			return sent, c.check(err)
		}
		p = p[n:]
	}
	return sent, nil
}

// ReadFrom sends r, by sendfile in steps when r is a file (or a LimitedReader of one), by Write
// otherwise: net.TCPConn's own fallback would write around the deadlines.
func (c *sendConn) ReadFrom(r io.Reader) (int64, error) {
	src, limit := r, int64(-1)
	lr, isLimited := r.(*io.LimitedReader)
	if isLimited {
		src, limit = lr.R, lr.N
	}
	if _, isFile := src.(syscall.Conn); !isFile {
		return io.Copy(struct{ io.Writer }{c}, r)
	}
	var total int64
	for limit != 0 {
		step := int64(sendStep)
		if limit > 0 {
			step = min(step, limit)
		}
		if err := c.arm(); err != nil {
			return total, err
		}
		n, err := c.TCPConn.ReadFrom(io.LimitReader(src, step))
		total += n
		if limit > 0 {
			limit -= n
		}
		if isLimited {
			lr.N = limit
		}
		if err != nil || n < step {
			return total, c.check(err)
		}
	}
	return total, nil
}

// writeBuffers sends bufs in one writev when they fit in a step, by Write otherwise.
func (c *sendConn) writeBuffers(bufs net.Buffers) (int64, error) {
	var total int
	for _, b := range bufs {
		total += len(b)
	}
	if total > sendStep {
		var sent int64
		for _, b := range bufs {
			n, err := c.Write(b)
			sent += int64(n)
			if err != nil {
				return sent, err
			}
		}
		return sent, nil
	}
	if err := c.arm(); err != nil {
		return 0, err
	}
	n, err := bufs.WriteTo(c.TCPConn)
	return n, c.check(err)
}

// tcpConnOf returns the TCP connection c is or wraps (by a NetConn method, as the connection
// caps' and TLS's connections do), or nil.
func tcpConnOf(c net.Conn) *net.TCPConn {
	for range 4 {
		switch cc := c.(type) {
		case *net.TCPConn:
			return cc
		case interface{ NetConn() net.Conn }:
			c = cc.NetConn()
		default:
			return nil
		}
	}
	return nil
}
