package connlimit

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/dt-cdn/dt/internal/testkit/needs"
)

// writeSyscalls is the number of write-type system calls (write, writev, sendfile, …) the
// process made so far (syscw in /proc/self/io).
func writeSyscalls(t *testing.T) int64 {
	t.Helper()
	f, err := os.Open("/proc/self/io")
	if err != nil {
		needs.Skipf(t, "%v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "syscw: "); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	needs.Skipf(t, "no syscw in /proc/self/io")
	return 0
}

func acceptedPair(t *testing.T) (client net.Conn, server *TCPConn) {
	t.Helper()
	lim, err := New(Config{FDReserve: -1})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := lim.Listener(raw)
	defer ln.Close()
	client, err = net.Dial("tcp", raw.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	sc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close(); sc.Close() })
	return client, sc.(*TCPConn)
}

// An accepted connection keeps *net.TCPConn's fast paths: net.Buffers leave in one writev, a
// file by sendfile (a few calls for 8 MiB, where copying takes one write per 32 KiB), and
// socket options are reachable.
func TestFastPaths(t *testing.T) {
	client, server := acceptedPair(t)
	var _ syscall.Conn = server

	bufs := make(net.Buffers, 64)
	for i := range bufs {
		bufs[i] = []byte{byte('a' + i%26)}
	}
	want := bytes.Join(bufs, nil)
	before := writeSyscalls(t)
	if n, err := bufs.WriteTo(server); err != nil || n != 64 {
		t.Fatalf("WriteTo: %d, %v", n, err)
	}
	if calls := writeSyscalls(t) - before; calls > 8 {
		t.Errorf("64 buffers took %d write calls: no writev", calls)
	}
	got := make([]byte, len(want))
	if _, err := io.ReadFull(client, got); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("read %q, %v", got, err)
	}

	const size = 8 << 20
	file := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(file, bytes.Repeat([]byte("x"), size), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	done := make(chan int64, 1)
	go func() {
		n, _ := io.CopyN(io.Discard, client, size)
		done <- n
	}()
	before = writeSyscalls(t)
	if n, err := server.ReadFrom(f); err != nil || n != size {
		t.Fatalf("ReadFrom: %d, %v", n, err)
	}
	calls := writeSyscalls(t) - before
	if n := <-done; n != size {
		t.Fatalf("client read %d of %d bytes", n, size)
	}
	t.Logf("8 MiB file: %d write-type system calls", calls)
	if calls >= size/(32<<10) {
		t.Errorf("8 MiB took %d write calls: copied, not sent by sendfile", calls)
	}
}
