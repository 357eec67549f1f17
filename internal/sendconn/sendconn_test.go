package sendconn

import (
	"bytes"
	"errors"
	"net"
	"os"
	"sync/atomic"
	"testing"
	"time"
)

// sendPair returns a client and the server's end of a loopback connection as a sendConn with
// the given timeout; the client reads nothing.
func sendPair(t *testing.T, timeout time.Duration) (net.Conn, *sendConn) {
	t.Helper()
	client, server := tcpPair(t)
	t.Cleanup(func() { client.Close() })
	return client, newSendConn(server.TCPConn, server, timeout, nil)
}

// blockedWrite writes to c until a write fails, and returns how long after the start that was.
func blockedWrite(t *testing.T, c *sendConn) time.Duration {
	t.Helper()
	start := time.Now()
	chunk := bytes.Repeat([]byte("x"), 1<<20)
	for time.Since(start) < time.Minute {
		if _, err := c.Write(chunk); err != nil {
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("write: %v, want a deadline error", err)
			}
			return time.Since(start)
		}
	}
	t.Fatal("writes to a client that reads nothing went on for a minute")
	return 0
}

// A write that makes no progress fails after the timeout, with no deadline set by the server.
func TestSendConnTimeout(t *testing.T) {
	_, c := sendPair(t, 300*time.Millisecond)
	if d := blockedWrite(t, c); d > 10*time.Second {
		t.Errorf("blocked write failed after %s, timeout 300ms", d)
	}
}

// The server's own deadline wins when it is earlier than the step's; a later one does not put
// the step's off; clearing it leaves the step's.
func TestSendConnServerDeadline(t *testing.T) {
	t.Run("earlier", func(t *testing.T) {
		_, c := sendPair(t, time.Hour)
		c.SetWriteDeadline(time.Now().Add(300 * time.Millisecond))
		if d := blockedWrite(t, c); d > 10*time.Second {
			t.Errorf("the server's 300ms deadline fired after %s", d)
		}
	})
	t.Run("later", func(t *testing.T) {
		_, c := sendPair(t, 300*time.Millisecond)
		c.SetDeadline(time.Now().Add(time.Hour))
		if d := blockedWrite(t, c); d > 10*time.Second {
			t.Errorf("a write stalled for %s under a later deadline of the server's", d)
		}
	})
	t.Run("cleared", func(t *testing.T) {
		_, c := sendPair(t, 300*time.Millisecond)
		c.SetWriteDeadline(time.Now().Add(time.Hour))
		c.SetWriteDeadline(time.Time{})
		if d := blockedWrite(t, c); d > 10*time.Second {
			t.Errorf("a write stalled for %s after the server cleared its deadline", d)
		}
	})
}

// Close closes the listener's connection, which may do more than close the socket.
func TestSendConnClose(t *testing.T) {
	closed := 0
	_, server := tcpPair(t)
	c := newSendConn(server.TCPConn, closerFunc(func() error { closed++; return server.Close() }), time.Second, nil)
	c.Close()
	if closed != 1 {
		t.Fatalf("outer Close called %d times, want 1", closed)
	}
}

type closerFunc func() error

func (f closerFunc) Close() error { return f() }

// Expired is called once per connection when the step's deadline ends a write (two blocked
// writes here), and not when the server's own deadline does.
func TestSendConnExpired(t *testing.T) {
	for _, tc := range []struct {
		name     string
		server   time.Duration // the server's own deadline; zero for none
		timeout  time.Duration
		wantHits int32
	}{
		{"step", 0, 300 * time.Millisecond, 1},
		{"server", 300 * time.Millisecond, time.Hour, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client, server := tcpPair(t)
			t.Cleanup(func() { client.Close() })
			var hits atomic.Int32
			c := newSendConn(server.TCPConn, server, tc.timeout, func() { hits.Add(1) })
			if tc.server > 0 {
				c.SetWriteDeadline(time.Now().Add(tc.server))
			}
			blockedWrite(t, c)
			blockedWrite(t, c)
			if got := hits.Load(); got != tc.wantHits {
				t.Fatalf("Expired called %d times, want %d", got, tc.wantHits)
			}
		})
	}
}
