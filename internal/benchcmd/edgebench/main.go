// Command edgebench measures the edge's HTTP serving against its peers on this machine: nginx,
// Caddy and Go's http.FileServer, serving the same three files (a 1 KiB HTML page, a 100 KiB
// script with a precompressed gzip variant, a 10 MiB binary) in one run, loaded by the same
// clients: wrk over HTTP/1.1 and h2load over HTTPS with HTTP/2; and new TLS handshakes per
// second (test "hs": a new TLS 1.3 connection per request, never resumed, all servers with the
// same ECDSA P-256 certificate, the edge picking it by server name from its table store), loaded
// by edgebench's own client in a process of its own. Runs are interleaved (every
// server once per round, in a different order each round) so that drift on a shared machine
// spreads over all of them. It prints requests and megabytes per second per server and the
// ratio to nginx.
//
// With -pin, the servers (this process, nginx and Caddy) run on CPU 0 and the clients on CPU 1,
// by taskset: each server then has one core to itself, as on a machine that serves remote
// clients, instead of contending with the client for both. Go servers size themselves to the
// one CPU (GOMAXPROCS 1), nginx runs one worker. Unpinned, Go's runtime wakes threads on the
// core the client runs on, and the figures measure that contention as much as the servers.
//
// All servers listen on 127.0.0.1 only. Every process edgebench starts is stopped by its PID
// before it exits. scripts/bench-edge.sh installs the peers and runs it.
//
// Usage:
//
//	edgebench [-d 3s] [-rounds 2] [-only test] [-servers edge,nginx,caddy,fileserver] [-hsc 16] [-pin] [-keep]
//
// The server edge-log (not run unless named in -servers) is the edge with its access log and
// traffic statistics on:
// -servers edge,edge-log measures what they cost. Likewise nginx-log is nginx with its access log
// on (combined, buffered), so that -servers edge,edge-log,nginx,nginx-log sets the edge's cost
// beside nginx's in one run.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"
)

type options struct {
	duration   time.Duration
	rounds     int
	conns      int // wrk connections
	bigConns   int // wrk connections for the 10 MiB file
	h2Clients  int // h2load clients (connections)
	h2Streams  int // h2load concurrent streams per connection
	hsConns    int // handshake client's concurrent connections
	threads    int // client threads (wrk -t, h2load -t)
	keep       bool
	only       string
	servers    string
	cpuProfile string
	pin        bool
}

// pinnedEnv marks the process re-run under taskset by -pin.
const pinnedEnv = "DT_EDGEBENCH_PINNED"

// Where -pin puts the servers and the clients.
const (
	serverCPU = "0"
	clientCPU = "1"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == handshakeClientArg {
		if err := runHandshakeClient(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "edgebench handshake client:", err)
			os.Exit(1)
		}
		return
	}
	var o options
	flag.DurationVar(&o.duration, "d", 3*time.Second, "duration of one load run")
	flag.IntVar(&o.rounds, "rounds", 2, "rounds (every server is loaded once per round and test)")
	flag.IntVar(&o.conns, "c", 32, "wrk connections (HTTP/1.1)")
	flag.IntVar(&o.bigConns, "bigc", 8, "wrk connections for the 10 MiB file")
	flag.IntVar(&o.h2Clients, "h2c", 8, "h2load clients (HTTP/2 connections)")
	flag.IntVar(&o.h2Streams, "h2m", 10, "h2load concurrent streams per connection (1 for the 10 MiB file)")
	flag.IntVar(&o.hsConns, "hsc", 16, "concurrent connections of the handshake test (a new TLS 1.3 connection per request)")
	flag.IntVar(&o.threads, "t", 1, "client threads; the client shares the machine's cores with the server")
	flag.BoolVar(&o.keep, "keep", false, "keep the temporary directory (configs, logs, files)")
	flag.StringVar(&o.only, "only", "", "run only tests whose name contains this (e.g. html, h2)")
	flag.StringVar(&o.servers, "servers", "edge,nginx,caddy,fileserver", "servers to run, comma-separated: edge, edge-log (the edge with its access log and statistics on), nginx, nginx-log (nginx with its access log on), caddy, fileserver")
	flag.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of this process (the edge and Go FileServer) during the load runs")
	flag.BoolVar(&o.pin, "pin", false, "servers on CPU 0, clients on CPU 1 (taskset), instead of all sharing every core")
	flag.Parse()
	if o.pin && os.Getenv(pinnedEnv) == "" {
		code, err := rerunPinned()
		if err != nil {
			fmt.Fprintln(os.Stderr, "edgebench:", err)
		}
		os.Exit(code)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "edgebench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options) (err error) {
	dir, err := os.MkdirTemp("", "edgebench-")
	if err != nil {
		return err
	}
	// nginx workers may run as another user: they must be able to read the files.
	if err := os.Chmod(dir, 0o755); err != nil {
		return err
	}
	if o.keep {
		fmt.Println("files, configs and logs in", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	fx, err := makeFixture(dir)
	if err != nil {
		return err
	}
	servers, err := startServers(ctx, dir, fx, strings.Split(o.servers, ","))
	defer func() {
		for _, s := range servers {
			if serr := s.stop(); serr != nil && err == nil {
				err = fmt.Errorf("stop %s: %w", s.name, serr)
			}
		}
	}()
	if err != nil {
		return err
	}
	for _, s := range servers {
		if err := verify(ctx, s, fx); err != nil {
			return err
		}
	}
	printVersions(ctx)
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	results, err := load(ctx, o, servers, fx)
	if err != nil {
		return err
	}
	report(os.Stdout, o, servers, fx, results)
	return nil
}

// rerunPinned runs this command again on serverCPU, where the servers it starts stay too, and
// returns its exit status. The Go runtime sizes GOMAXPROCS to the CPUs a process may use at
// start, so pinning has to come before the process starts, not after.
func rerunPinned() (exitCode int, err error) {
	if runtime.NumCPU() < 2 {
		return 1, fmt.Errorf("-pin needs two CPUs, this process may use %d", runtime.NumCPU())
	}
	self, err := os.Executable()
	if err != nil {
		return 1, err
	}
	taskset, err := exec.LookPath("taskset")
	if err != nil {
		return 1, fmt.Errorf("-pin: %w (util-linux)", err)
	}
	cmd := exec.Command(taskset, append([]string{"-c", serverCPU, self}, os.Args[1:]...)...)
	cmd.Env = append(os.Environ(), pinnedEnv+"=1")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	// Interrupts reach the child too (same process group); this process waits for it.
	signal.Ignore(os.Interrupt, syscall.SIGTERM)
	err = cmd.Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.ExitCode(), nil // the child has said why
	}
	if err != nil {
		return 1, err
	}
	return 0, nil
}
