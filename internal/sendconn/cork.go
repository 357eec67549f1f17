package sendconn

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/dt-cdn/dt/internal/tcpopt"
)

// corkMin is the smallest body worth corking the connection for. net/http writes a response
// through a 4 KiB buffer: a smaller response leaves in one write anyway, and a larger one in
// two or more (the buffer with the headers, then the rest), each sent at once on a TCP_NODELAY
// socket, so the client wakes and reads twice per response.
const corkMin = 4 << 10

// holdMax is how much a corked connection copies aside; a larger write is sent at once, with
// what is held, in one writev.
const holdMax = 8 << 10

// NotSentLowat bounds the bytes a connection's socket holds unsent (TCP_NOTSENT_LOWAT). By
// default Linux lets a socket queue up to its whole send buffer, which autotuning grows to
// 4 MiB: a large file is then pushed out in bursts of megabytes that wait in the kernel, behind
// which any other response on the connection (an HTTP/2 stream, the next HTTP/1.1 response)
// must queue, and which the receiving side's buffers grow to absorb. Bounded, the socket asks
// for more only as data leaves; what is in flight is not limited, so throughput on long paths
// is not either. 128 KiB is a value common in production web serving; measured here with
// wrk over loopback (8 connections, a 10 MiB file, plain Go server with sendfile), 185–205
// responses/s without it and 254–265 with it.
const NotSentLowat = 128 << 10

// Listener hands out connections whose writes have a deadline of Timeout per step, and that can
// be corked (Conn). A connection that is neither TCP nor a wrapper of TCP is handed out as it
// is.
type Listener struct {
	net.Listener
	// Timeout closes a connection whose client takes nothing of a write for this long. Zero
	// means no deadline but the server's own.
	Timeout time.Duration
	// Expired, if set, is called once for each connection whose write Timeout ended (a
	// deadline the server set does not count), to count and log them.
	Expired func()
}

func (l Listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if tc := tcpConnOf(c); tc != nil {
		return &Conn{sendConn: newSendConn(tc, c, l.Timeout, l.Expired)}, nil
	}
	return c, nil
}

// Conn is a TCP connection whose writes have a deadline per step (see the package
// documentation), and that can hold a response's writes and send them together: a cork in
// user space. net/http writes a response of a few tens of kilobytes in two writes (its
// buffer with the headers, then the rest); corked, the first is held and leaves with the second
// in one writev, one system call instead of two, and two fewer than the kernel's TCP_CORK needs
// (set, then clear). As nginx's tcp_nopush, what leaves is full segments.
//
// What it holds is in a buffer from a pool, given back at the end of the corked response: an
// idle connection holds none.
type Conn struct {
	*sendConn
	mu     sync.Mutex
	corked bool
	heldp  *[]byte // from heldBufs while corked writes are held
	held   []byte
}

var heldBufs = sync.Pool{New: func() any { b := make([]byte, 0, holdMax); return &b }}

func (c *Conn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.corked {
		return c.sendConn.Write(p)
	}
	if len(c.held)+len(p) <= holdMax {
		if c.heldp == nil {
			c.heldp = heldBufs.Get().(*[]byte)
			c.held = (*c.heldp)[:0]
		}
		c.held = append(c.held, p...)
		return len(p), nil
	}
	if len(c.held) == 0 {
		return c.sendConn.Write(p)
	}
	n, err := c.sendConn.writeBuffers(net.Buffers{c.held, p})
	sent := int(n) - len(c.held)
	c.held = c.held[:0]
	if err != nil {
		return max(sent, 0), err
	}
	return len(p), nil
}

// ReadFrom sends what is held, then r (sendfile when r is a file), under the kernel's cork so
// that the two leave as full segments.
func (c *Conn) ReadFrom(r io.Reader) (int64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.held) > 0 {
		if tcpopt.SetCork(c.TCPConn, true) {
			defer tcpopt.SetCork(c.TCPConn, false)
		}
		if err := c.flushLocked(); err != nil {
			return 0, err
		}
	}
	return c.sendConn.ReadFrom(r)
}

// cork holds writes until uncork.
func (c *Conn) cork() {
	c.mu.Lock()
	c.corked = true
	c.mu.Unlock()
}

// uncork sends what is held and writes straight through again; the buffer goes back to the
// pool.
func (c *Conn) uncork() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.corked = false
	c.flushLocked()
	if c.heldp != nil {
		heldBufs.Put(c.heldp)
		c.heldp, c.held = nil, nil
	}
}

func (c *Conn) flushLocked() error {
	if len(c.held) == 0 {
		return nil
	}
	_, err := c.sendConn.Write(c.held)
	c.held = c.held[:0]
	return err
}

type connKey struct{}

// ConnContext is a server's ConnContext: it bounds the socket's unsent bytes (NotSentLowat) and
// keeps the connection (under TLS too) in the context of its requests, for Cork.
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	if cc, ok := c.(*Conn); ok {
		tcpopt.SetNotSentLowat(cc.TCPConn, NotSentLowat)
		return context.WithValue(ctx, connKey{}, cc)
	}
	// internal/h1 takes the listener's connection as it is: a *net.TCPConn, or the connection
	// caps' wrapper of one.
	if tc := tcpConnOf(c); tc != nil {
		tcpopt.SetNotSentLowat(tc, NotSentLowat)
	}
	return ctx
}

// Cork corks the request's connection for an HTTP/1.x response body of n bytes, when that is
// worth it and possible, and returns what sends the response, net/http's buffer included, and
// uncorks. HTTP/2 frames its own writes, and shares the connection among streams: it is left
// alone.
func Cork(w http.ResponseWriter, r *http.Request, n int64) (uncork func()) {
	if n < corkMin || r.ProtoMajor != 1 {
		return func() {}
	}
	cc, ok := r.Context().Value(connKey{}).(*Conn)
	if !ok {
		return func() {}
	}
	cc.cork()
	return func() {
		// The end of the body may still wait in net/http's buffer: it goes with the rest.
		http.NewResponseController(w).Flush()
		cc.uncork()
	}
}
