package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dt-cdn/dt/accesslog"
	"github.com/dt-cdn/dt/edge"
	"github.com/dt-cdn/dt/internal/connlimit"
	"github.com/dt-cdn/dt/internal/httpserve"
	"github.com/dt-cdn/dt/static"
	"github.com/dt-cdn/dt/trafficstats"
)

// server is one server under test, listening on 127.0.0.1 for HTTP/1.1 (h1) and HTTPS with
// HTTP/2 (h2).
type server struct {
	name       string
	h1, h2     string // base URLs
	gzipStatic bool   // serves the precompressed .gz for Accept-Encoding: gzip (set by verify)
	stop       func() error
}

// startServers starts every server. On error, the ones already started are returned too, so
// that the caller stops them.
func startServers(ctx context.Context, dir string, fx *fixture, only []string) ([]*server, error) {
	var out []*server
	for _, sv := range []struct {
		key   string
		start func(context.Context, string, *fixture) (*server, error)
	}{
		{"edge", startEdge}, {"edge-log", startEdgeLogging}, {"nginx", startNginx}, {"nginx-log", startNginxLogging}, {"caddy", startCaddy}, {"fileserver", startFileServer},
	} {
		if !slices.Contains(only, sv.key) {
			continue
		}
		s, err := sv.start(ctx, dir, fx)
		if s != nil {
			out = append(out, s)
		}
		if err != nil {
			return out, err
		}
		if err := waitReady(ctx, s, fx); err != nil {
			return out, fmt.Errorf("%s: %w", s.name, err)
		}
	}
	return out, nil
}

// listenPair listens on two loopback ports, for the Go servers.
func listenPair() (net.Listener, net.Listener, error) {
	a, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	b, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		a.Close()
		return nil, nil, err
	}
	return a, b, nil
}

// freePorts returns two loopback ports that were free a moment ago, for nginx and Caddy.
func freePorts() (int, int, error) {
	a, b, err := listenPair()
	if err != nil {
		return 0, 0, err
	}
	defer a.Close()
	defer b.Close()
	return a.Addr().(*net.TCPAddr).Port, b.Addr().(*net.TCPAddr).Port, nil
}

// startEdge is the edge as it runs with its access log and statistics off: its handler counts
// every response for the load report and the metrics (edge.Accounting), as a deployed edge's does.
func startEdge(ctx context.Context, _ string, fx *fixture) (*server, error) {
	return startEdgeWith(ctx, fx, edge.AccountingConfig{}, "dt edge")
}

// startEdgeLogging is the edge with its access log on (JSON lines to a file in dir) and its
// traffic statistics counted, to measure what both cost beside startEdge in the same run.
func startEdgeLogging(ctx context.Context, dir string, fx *fixture) (*server, error) {
	l, err := accesslog.New(accesslog.Config{Path: filepath.Join(dir, "edge-access.log")})
	if err != nil {
		return nil, err
	}
	lctx, stopLog := context.WithCancel(ctx)
	logDone := make(chan error, 1)
	go func() { logDone <- l.Run(lctx) }()
	s, err := startEdgeWith(ctx, fx, edge.AccountingConfig{AccessLog: l, Stats: trafficstats.New(trafficstats.Config{})}, "dt edge + log + stats")
	if err != nil {
		stopLog()
		return nil, errors.Join(err, <-logDone)
	}
	stopServer := s.stop
	s.stop = func() error {
		err := stopServer()
		stopLog()
		st := l.Stats()
		fmt.Fprintf(os.Stderr, "edge access log: %d lines written, %d dropped (queue full), %d dropped (write failed)\n", st.Lines, st.QueueFull, st.WriteFailed)
		return errors.Join(err, <-logDone)
	}
	return s, nil
}

// startEdgeWith starts the edge's handler and server, the handler's responses counted as acct
// says, with the edge's metrics registered.
func startEdgeWith(ctx context.Context, fx *fixture, acct edge.AccountingConfig, name string) (*server, error) {
	reg := prometheus.NewRegistry()
	acct.Registerer = reg
	obs, err := edge.NewAccounting(acct)
	if err != nil {
		return nil, err
	}
	h := static.NewHandler(static.HandlerConfig{SendTimeout: httpserve.DefaultSendTimeout, Observer: obs})
	h.SetSite(fx.site)
	// The edge's server: its defaults, with connection caps and its metrics.
	srv, err := httpserve.New(httpserve.Config{Handler: h, ConnCaps: &connlimit.Config{}, Registerer: reg, Subsystem: "edge"})
	if err != nil {
		return nil, err
	}
	ln1, ln2, err := listenPair()
	if err != nil {
		return nil, err
	}
	getCert, err := handshakeTable(fx)
	if err != nil {
		ln1.Close()
		ln2.Close()
		return nil, err
	}
	sctx, cancel := context.WithCancel(ctx)
	errc := make(chan error, 2)
	go func() { errc <- srv.Serve(sctx, ln1, nil) }()
	go func() { errc <- srv.Serve(sctx, ln2, &tls.Config{GetCertificate: getCert}) }()
	return &server{
		name: name,
		h1:   "http://" + ln1.Addr().String(),
		h2:   "https://" + ln2.Addr().String(),
		stop: func() error {
			cancel()
			return errors.Join(<-errc, <-errc)
		},
	}, nil
}

func startFileServer(ctx context.Context, _ string, fx *fixture) (*server, error) {
	ln1, ln2, err := listenPair()
	if err != nil {
		return nil, err
	}
	h := http.FileServer(http.Dir(fx.www))
	plain := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	secure := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second,
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{fx.cert}}}
	errc := make(chan error, 2)
	go func() { errc <- plain.Serve(ln1) }()
	go func() { errc <- secure.ServeTLS(ln2, "", "") }()
	return &server{
		name: "Go FileServer",
		h1:   "http://" + ln1.Addr().String(),
		h2:   "https://" + ln2.Addr().String(),
		stop: func() error {
			plain.Close()
			secure.Close()
			var errs []error
			for range 2 {
				if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
					errs = append(errs, err)
				}
			}
			return errors.Join(errs...)
		},
	}, nil
}

func startNginx(ctx context.Context, dir string, fx *fixture) (*server, error) {
	return startNginxWith(ctx, dir, fx, "nginx", "access_log off;")
}

// startNginxLogging is nginx with its access log on, as a production server keeps it: the
// combined format, buffered (64 KiB, flushed each second), to a file in dir. Beside startNginx
// in the same run it measures what nginx pays for its log, the anchor for the edge's.
func startNginxLogging(ctx context.Context, dir string, fx *fixture) (*server, error) {
	log := filepath.Join(dir, "nginx-log", "access.log")
	return startNginxWith(ctx, dir, fx, "nginx-log", "access_log "+log+" combined buffer=64k flush=1s;")
}

func startNginxWith(ctx context.Context, dir string, fx *fixture, name, accessLog string) (*server, error) {
	p1, p2, err := freePorts()
	if err != nil {
		return nil, err
	}
	ndir := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Join(ndir, "logs"), 0o755); err != nil {
		return nil, err
	}
	// Production settings a static site would use: TLS 1.2 and 1.3 (nginx before 1.23.4 leaves
	// 1.3 out by default, which the Go servers and the handshake test use), sendfile, gzip_static for the precompressed
	// script, the access log as asked (off, as the edge keeps none by default, or on for
	// nginx-log), keep-alive without a request cap (the Go servers have none), one worker per
	// core it may use (with -pin, one).
	conf := fmt.Sprintf(`daemon off;
worker_processes %[7]d;
pid %[1]s/nginx.pid;
error_log %[1]s/logs/error.log warn;
events { worker_connections 4096; }
http {
	%[8]s
	sendfile on;
	tcp_nopush on;
	keepalive_requests 10000000;
	types { text/html html; text/javascript js; application/octet-stream bin; }
	default_type application/octet-stream;
	client_body_temp_path %[1]s/body;
	proxy_temp_path %[1]s/proxy;
	fastcgi_temp_path %[1]s/fastcgi;
	uwsgi_temp_path %[1]s/uwsgi;
	scgi_temp_path %[1]s/scgi;
	server {
		listen 127.0.0.1:%[2]d;
		listen 127.0.0.1:%[3]d ssl http2;
		ssl_certificate %[4]s;
		ssl_certificate_key %[5]s;
		ssl_protocols TLSv1.2 TLSv1.3;
		root %[6]s;
		gzip_static on;
	}
}
`, ndir, p1, p2, fx.certFile, fx.keyFile, fx.www, runtime.NumCPU(), accessLog)
	confFile := filepath.Join(ndir, "nginx.conf")
	if err := os.WriteFile(confFile, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	s, err := startProcess(ctx, name, filepath.Join(ndir, "logs", "stderr.log"), nil, "nginx", "-p", ndir, "-c", confFile)
	if err != nil {
		return nil, err
	}
	s.h1 = fmt.Sprintf("http://127.0.0.1:%d", p1)
	s.h2 = fmt.Sprintf("https://127.0.0.1:%d", p2)
	return s, nil
}

func startCaddy(ctx context.Context, dir string, fx *fixture) (*server, error) {
	p1, p2, err := freePorts()
	if err != nil {
		return nil, err
	}
	cdir := filepath.Join(dir, "caddy")
	if err := os.MkdirAll(cdir, 0o755); err != nil {
		return nil, err
	}
	// A file server with precompressed gzip, no admin endpoint, no automatic certificates (the
	// HTTPS site uses the benchmark's certificate), no HTTP/3 (UDP), no access log.
	site := fmt.Sprintf(`	root * %s
	file_server {
		precompressed gzip
	}
`, fx.www)
	conf := fmt.Sprintf(`{
	admin off
	auto_https off
	storage file_system %[1]s/data
	servers {
		protocols h1 h2
	}
}
http://127.0.0.1:%[2]d {
%[4]s}
https://127.0.0.1:%[3]d {
	tls %[5]s %[6]s
%[4]s}
`, cdir, p1, p2, site, fx.certFile, fx.keyFile)
	confFile := filepath.Join(cdir, "Caddyfile")
	if err := os.WriteFile(confFile, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	env := []string{"HOME=" + cdir, "XDG_DATA_HOME=" + cdir + "/data", "XDG_CONFIG_HOME=" + cdir + "/config"}
	s, err := startProcess(ctx, "Caddy", filepath.Join(cdir, "caddy.log"), env, "caddy", "run", "--config", confFile, "--adapter", "caddyfile")
	if err != nil {
		return nil, err
	}
	s.h1 = fmt.Sprintf("http://127.0.0.1:%d", p1)
	s.h2 = fmt.Sprintf("https://127.0.0.1:%d", p2)
	return s, nil
}

// startProcess starts a server process with its output in logFile; stop ends it by its PID
// (SIGTERM, then SIGKILL after 5 s) and waits for it.
func startProcess(ctx context.Context, name, logFile string, env []string, argv ...string) (*server, error) {
	log, err := os.Create(logFile)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.Env = append(os.Environ(), env...)
	if err := cmd.Start(); err != nil {
		log.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait(); log.Close() }()
	return &server{
		name: name,
		stop: func() error {
			cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-exited:
				return nil
			case <-time.After(5 * time.Second):
				cmd.Process.Kill()
				<-exited
				return fmt.Errorf("%s (pid %d) did not stop on SIGTERM; killed", name, cmd.Process.Pid)
			}
		},
	}, nil
}

// client returns an HTTP client for the benchmark's servers (HTTP/2 over TLS, trusting the
// benchmark's certificate, no transparent decompression).
func client(fx *fixture) *http.Client {
	return &http.Client{
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Transport: &http.Transport{
			TLSClientConfig:    &tls.Config{RootCAs: fx.pool},
			ForceAttemptHTTP2:  true,
			DisableCompression: true,
		},
	}
}

// waitReady polls a server until both its ports answer, for up to 15 s.
func waitReady(ctx context.Context, s *server, fx *fixture) error {
	c := client(fx)
	defer c.CloseIdleConnections()
	deadline := time.Now().Add(15 * time.Second)
	var lastErr error
	for _, base := range []string{s.h1, s.h2} {
		for {
			resp, err := c.Get(base + fx.files[0].path)
			if err == nil {
				resp.Body.Close()
				break
			}
			lastErr = err
			if time.Now().After(deadline) {
				return fmt.Errorf("not answering at %s: %w", base, lastErr)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	return nil
}

// verify checks that a server sends the right bytes for every file over both protocols, and
// whether it serves the precompressed script.
func verify(ctx context.Context, s *server, fx *fixture) error {
	c := client(fx)
	defer c.CloseIdleConnections()
	for _, base := range []string{s.h1, s.h2} {
		for _, f := range fx.files {
			req, _ := http.NewRequestWithContext(ctx, "GET", base+f.path, nil)
			if f.gzipped {
				req.Header.Set("Accept-Encoding", "gzip")
			}
			resp, err := c.Do(req)
			if err != nil {
				return fmt.Errorf("%s %s: %w", s.name, f.path, err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				return fmt.Errorf("%s %s: %w", s.name, f.path, err)
			}
			want := f.body
			if resp.Header.Get("Content-Encoding") == "gzip" {
				want = f.gz
				s.gzipStatic = true
			}
			if resp.StatusCode != 200 || !bytes.Equal(body, want) {
				return fmt.Errorf("%s %s%s: status %d, %d bytes, Content-Encoding %q: not the file",
					s.name, base, f.path, resp.StatusCode, len(body), resp.Header.Get("Content-Encoding"))
			}
			if strings.HasPrefix(base, "https") && resp.ProtoMajor != 2 {
				return fmt.Errorf("%s: %s over %s, want HTTP/2", s.name, base, resp.Proto)
			}
		}
	}
	return nil
}
