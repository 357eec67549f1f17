package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/dt-cdn/dt/accesslog"
	"github.com/dt-cdn/dt/edge"
	"github.com/dt-cdn/dt/heartbeat"
	"github.com/dt-cdn/dt/nodehost"
)

// edgeFlags are dt edge's own flags, beside the node's.
type edgeFlags struct {
	servingFlags
	publicURL string
	name      string
	location  string
	geoip     string
	publicIPs stringList
	heartbeat time.Duration
	drainWait time.Duration
	stdHTTP1  bool
	stdHTTP2  bool
	accessLog accessLogFlags
	stats     time.Duration
	noStats   bool
}

// accessLogFlags are dt edge's --access-log flags.
type accessLogFlags struct {
	path, format string
	maxSize      int64
	keep         int
	truncateIP   bool
}

func (af *accessLogFlags) register(fs *flagSet) {
	fs.StringVar(&af.path, "access-log", "", "append a line per response to `FILE` (- for standard output); SIGHUP reopens it, for logrotate (default: no access log)")
	fs.StringVar(&af.format, "access-log-format", "json", "the access log's `FORMAT`: json (JSON lines) or combined (Apache and nginx's Combined Log Format)")
	fs.Int64Var(&af.maxSize, "access-log-max-size", 0, "rotate the access log when it would pass `BYTES` (0: never; rotate with logrotate and SIGHUP instead)")
	fs.IntVar(&af.keep, "access-log-keep", accesslog.DefaultKeep, "keep `N` old access log files when rotating by size")
	fs.BoolVar(&af.truncateIP, "access-log-truncate-ip", false, "log clients' addresses truncated to their /24 (IPv4) or /48 (IPv6)")
}

// config turns the flags into the access log's configuration, nil without --access-log.
func (af *accessLogFlags) config(fs *flagSet, stdout io.Writer) (*accesslog.Config, error) {
	format, err := accesslog.ParseFormat(af.format)
	if err != nil {
		return nil, fs.usageErrorf("--access-log-format: want json or combined")
	}
	if af.maxSize < 0 || af.keep < 1 {
		return nil, fs.usageErrorf("--access-log-max-size cannot be negative, and --access-log-keep must be at least 1")
	}
	if af.path == "" {
		return nil, nil
	}
	return &accesslog.Config{Path: af.path, Format: format, MaxSize: af.maxSize, Keep: af.keep, TruncateIP: af.truncateIP, Stdout: stdout}, nil
}

func runEdge(ctx context.Context, args []string, env *Env) error {
	var (
		nf nodeFlags
		ef edgeFlags
	)
	fs := newFlagSet(env, "edge", "dt edge --keys DIR --data DATADIR --peer ADDR... [--listen ADDR] --http ADDR --https ADDR [--domain NAME]... [--acme-directory URL] [--public-url URL] [--location LAT,LON] [--geoip FILE] [--admin ADDR]",
		"Runs an edge: a dt node that serves the network's current deploy to visitors, switching to a\n"+
			"new deploy only once it holds every file of it, and reports itself in heartbeats.\n"+
			"With --domain, certificates come from ACME (Let's Encrypt unless --acme-directory) and\n"+
			"--http answers ACME challenges and redirects to HTTPS; without, --https uses a locally\n"+
			"generated certificate and --http serves the site too. SIGTERM drains: the edge announces\n"+
			"it, waits --drain-wait for redirectors to stop sending visitors, finishes requests in\n"+
			"flight and exits. SIGHUP reopens the --access-log file.")
	nf.register(fs)
	ef.servingFlags.register(fs, "serve HTTP on `ADDR` (ACME challenges and redirects with --domain; the site without)")
	fs.StringVar(&ef.publicURL, "public-url", "", "the `URL` visitors reach this edge at (default: from --domain or the listeners)")
	fs.StringVar(&ef.name, "name", "", "call the edge `NAME` in heartbeats and on the dashboard (default: its public URL's host)")
	fs.StringVar(&ef.location, "location", "", "the edge's location `LAT,LON` (default: its public address looked up in --geoip)")
	fs.StringVar(&ef.geoip, "geoip", "", "MaxMind-format `FILE.mmdb` to locate the edge by its public address")
	fs.Var(&ef.publicIPs, "public-ip", "the edge's public `ADDR` (IPv4 and/or IPv6); repeatable (default: the addresses its dt peers see it at, when public)")
	fs.DurationVar(&ef.heartbeat, "heartbeat-interval", edge.DefaultHeartbeatInterval, "send a heartbeat every `INTERVAL`")
	fs.DurationVar(&ef.drainWait, "drain-wait", 0, "on SIGTERM, keep serving for `DURATION` after announcing the drain (0: 2 heartbeat intervals)")
	fs.BoolVar(&ef.stdHTTP1, "std-http1", false, "serve plain HTTP/1.x with Go's net/http server rather than dt's own (slower; a fallback should a client disagree with dt's)")
	fs.BoolVar(&ef.stdHTTP2, "std-http2", false, "serve HTTP/2 with Go's net/http server rather than dt's own (slower; a fallback should a client disagree with dt's)")
	ef.accessLog.register(fs)
	fs.DurationVar(&ef.stats, "stats-interval", 0, "send the edge's traffic per site (requests, bytes, statuses, top paths, referrers, countries, unique visitors) every `INTERVAL` (0: 1m)")
	fs.BoolVar(&ef.noStats, "no-stats", false, "count no traffic statistics and send none")
	if err := parsePlainNode(fs, args, &nf, "an edge"); err != nil {
		return err
	}
	if err := ef.servingFlags.check(fs); err != nil {
		return err
	}
	if len(ef.name) > 64 || strings.IndexFunc(ef.name, unicode.IsControl) >= 0 {
		return fs.usageErrorf("--name: at most 64 characters, none of them control characters")
	}
	cfg, err := ef.config(fs)
	if err != nil {
		return err
	}
	if cfg.AccessLog, err = ef.accessLog.config(fs, env.Stdout); err != nil {
		return err
	}
	switch {
	case ef.stats < 0:
		return fs.usageErrorf("--stats-interval cannot be negative (--no-stats turns statistics off)")
	case ef.noStats:
		cfg.StatsInterval = -1
	default:
		cfg.StatsInterval = ef.stats
	}
	return runRole(ctx, env, &nf, func(host nodehost.Config) (reopenOnSIGHUP, error) {
		cfg.Host = host
		e, err := edge.New(cfg)
		return reopenOnSIGHUP{e}, err
	})
}

// reopenOnSIGHUP runs an edge that reopens its access log on each SIGHUP while it runs (and is
// not stopped by one, as a process without a handler would be).
type reopenOnSIGHUP struct{ *edge.Node }

func (e reopenOnSIGHUP) Run(ctx context.Context) error {
	stop := onSIGHUP(e.Reopen)
	defer stop()
	return e.Node.Run(ctx)
}

// config turns the edge's own flags into an edge's configuration; the node's part and the
// process's hooks come from the node's flags.
func (ef *edgeFlags) config(fs *flagSet) (edge.Config, error) {
	cfg := edge.Config{HTTP: ef.http, HTTPS: ef.https, Domains: ef.domains, ACMEDirectory: ef.acmeDir, ACMEEmail: ef.acmeEmail,
		PublicURL: ef.publicURL, Name: ef.name, GeoIP: ef.geoip, HeartbeatInterval: ef.heartbeat, DrainWait: ef.drainWait,
		StdHTTP1: ef.stdHTTP1, StdHTTP2: ef.stdHTTP2, MaxConns: ef.conns.max, MaxConnsPerIP: ef.conns.perIP, FDReserve: ef.conns.fdReserve}
	for _, s := range ef.publicIPs {
		ip, err := netip.ParseAddr(s)
		if err != nil {
			return cfg, fs.usageErrorf("--public-ip %q: %v", s, err)
		}
		if ip.Unmap().Is4() {
			cfg.IPv4 = ip.Unmap()
		} else {
			cfg.IPv6 = ip
		}
	}
	if ef.location != "" {
		loc, err := parseLocation(ef.location)
		if err != nil {
			return cfg, fs.usageErrorf("--location: %v", err)
		}
		cfg.Location = loc
	}
	return cfg, nil
}

// parseLocation reads "LAT,LON".
func parseLocation(s string) (*heartbeat.Location, error) {
	lat, lon, ok := strings.Cut(s, ",")
	if !ok {
		return nil, errors.New("want LAT,LON")
	}
	la, err1 := strconv.ParseFloat(strings.TrimSpace(lat), 64)
	lo, err2 := strconv.ParseFloat(strings.TrimSpace(lon), 64)
	if err1 != nil || err2 != nil || la < -90 || la > 90 || lo < -180 || lo > 180 {
		return nil, fmt.Errorf("%q is not a latitude,longitude", s)
	}
	return &heartbeat.Location{Lat: la, Lon: lo}, nil
}
