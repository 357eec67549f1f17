package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dt-cdn/dt/dt"
	"github.com/dt-cdn/dt/netcert"
)

// benchName is the server name the handshake test asks for (SNI), which the benchmark's
// certificate covers: the edge picks the certificate from its table store by it, as it picks
// every network certificate.
const benchName = "bench.dt.test"

// handshakeClientArg is the hidden first argument that makes edgebench the handshake client
// (runHandshakeClient), run as a process of its own so that -pin can put it on the clients' CPU
// and it never shares a Go runtime with the edge it loads.
const handshakeClientArg = "-handshake-client"

// handshakeTable returns the GetCertificate of the edge's HTTPS listener in the benchmark: the
// benchmark's certificate as a sealed record of the table, looked up by server name as the
// edge's netcert.Store does for every handshake; a handshake without a server name (h2load's,
// to an address) gets the certificate directly.
func handshakeTable(fx *fixture) (func(*tls.ClientHelloInfo) (*tls.Certificate, error), error) {
	var network dt.NetworkKey
	network[0] = 1
	sealer, err := netcert.NewSealer(network)
	if err != nil {
		return nil, err
	}
	rec, err := netcert.NewRecord(fx.cert.Certificate, fx.key, sealer, time.Now().Add(time.Hour))
	if err != nil {
		return nil, err
	}
	b, err := rec.Marshal()
	if err != nil {
		return nil, err
	}
	store, err := netcert.NewStore(netcert.StoreConfig{Sealer: sealer})
	if err != nil {
		return nil, err
	}
	store.HandleEvent(dt.Event{Type: dt.EventObjectAdded, Key: rec.TableKey(), Object: b})
	if store.Lookup(benchName) == nil {
		return nil, errors.New("the table store does not serve the benchmark's certificate")
	}
	return func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
		if c := store.Lookup(hello.ServerName); c != nil {
			return c, nil
		}
		return &fx.cert, nil
	}, nil
}

// runHandshakes loads s with new TLS connections for o.duration: the handshake client in a
// process of its own, on the clients' CPU with -pin.
func runHandshakes(ctx context.Context, o options, t test, s *server, fx *fixture) (measure, error) {
	self, err := os.Executable()
	if err != nil {
		return measure{}, err
	}
	argv := []string{self, handshakeClientArg, "-d", o.duration.String(), "-c", strconv.Itoa(o.hsConns),
		"-ca", fx.certFile, s.h2 + t.file.path}
	if o.pin {
		argv = append([]string{"taskset", "-c", clientCPU}, argv...)
	}
	cctx, cancel := context.WithTimeout(ctx, o.duration+30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(cctx, argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		return measure{}, fmt.Errorf("%s: %w\n%s", strings.Join(argv, " "), err, out)
	}
	return parseHandshakes(string(out))
}

var (
	hsDone  = regexp.MustCompile(`handshakes: (\d+) in ([0-9.]+)s, (\d+) failed`)
	hsFirst = regexp.MustCompile(`first failure: .*`)
)

func parseHandshakes(out string) (measure, error) {
	m := hsDone.FindStringSubmatch(out)
	if m == nil {
		return measure{}, fmt.Errorf("cannot read the handshake client's output:\n%s", out)
	}
	n, _ := strconv.ParseFloat(m[1], 64)
	secs, _ := strconv.ParseFloat(m[2], 64)
	res := measure{reqs: n / secs}
	if m[3] != "0" {
		res.errors = " failed: " + m[3] + " (" + hsFirst.FindString(out) + ")"
	}
	return res, nil
}

// runHandshakeClient is the handshake client: -c workers, each opening a connection, making a
// full TLS 1.3 handshake (no session cache, so never resumed; X25519 then P-256 offered, not
// the post-quantum hybrid Go prefers, which not every nginx build offers, so that every server
// does the same key exchange), sending one HTTP/1.1 request with Connection: close and reading the answer to
// its end, until -d has passed. It prints the handshakes completed.
func runHandshakeClient(args []string) error {
	fs := flag.NewFlagSet("handshake-client", flag.ContinueOnError)
	d := fs.Duration("d", 3*time.Second, "duration")
	conns := fs.Int("c", 16, "concurrent connections")
	caFile := fs.String("ca", "", "PEM file of the certificate to trust")
	if err := fs.Parse(args); err != nil {
		return err
	}
	u, err := url.Parse(fs.Arg(0))
	if err != nil || fs.NArg() != 1 {
		return fmt.Errorf("want one https URL, got %q", fs.Args())
	}
	pem, err := os.ReadFile(*caFile)
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return errors.New("no certificate in -ca")
	}
	cfg := &tls.Config{ServerName: benchName, RootCAs: pool, MinVersion: tls.VersionTLS13,
		CurvePreferences: []tls.CurveID{tls.X25519, tls.CurveP256}, NextProtos: []string{"http/1.1"}}
	req := []byte("GET " + u.Path + " HTTP/1.1\r\nHost: " + benchName + "\r\nConnection: close\r\n\r\n")
	var done, failed atomic.Int64
	var firstErr atomic.Value
	deadline := time.Now().Add(*d)
	start := time.Now()
	var wg sync.WaitGroup
	for range *conns {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				if err := oneHandshake(u.Host, cfg, req); err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err)
					continue
				}
				done.Add(1)
			}
		})
	}
	wg.Wait()
	fmt.Printf("handshakes: %d in %.3fs, %d failed\n", done.Load(), time.Since(start).Seconds(), failed.Load())
	if err, ok := firstErr.Load().(error); ok {
		fmt.Println("first failure:", err)
	}
	return nil
}

// oneHandshake makes one connection to addr: a full handshake, one request, the whole answer.
func oneHandshake(addr string, cfg *tls.Config, req []byte) error {
	raw, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer raw.Close()
	_ = raw.SetDeadline(time.Now().Add(10 * time.Second))
	conn := tls.Client(raw, cfg)
	if err := conn.Handshake(); err != nil {
		return err
	}
	if st := conn.ConnectionState(); st.Version != tls.VersionTLS13 || st.DidResume {
		return fmt.Errorf("TLS version %x, resumed %v: want a full TLS 1.3 handshake", st.Version, st.DidResume)
	}
	if _, err := conn.Write(req); err != nil {
		return err
	}
	br := bufio.NewReader(conn)
	status, err := br.ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(status, "HTTP/1.1 200") {
		return fmt.Errorf("status %q", strings.TrimSpace(status))
	}
	_, err = io.Copy(io.Discard, br)
	return err
}

// handshakeFile is the file the handshake test requests: the smallest, so that the handshake
// dominates the connection's cost.
const handshakeFile = "html-1KiB"
