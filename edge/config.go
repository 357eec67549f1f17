package edge

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"net/url"
	"time"

	"github.com/dt-cdn/dt/accesslog"
	"github.com/dt-cdn/dt/heartbeat"
	"github.com/dt-cdn/dt/nodehost"
	"github.com/dt-cdn/dt/trafficstats"
)

// Defaults of Config.
const (
	// DefaultHeartbeatInterval is how often an edge reports itself: heartbeat.DefaultInterval,
	// which says why.
	DefaultHeartbeatInterval = heartbeat.DefaultInterval
	// DefaultDrainBeats is how many heartbeat intervals a draining edge keeps serving when
	// Config.DrainWait is zero: a redirector hears the draining heartbeat within one
	// interval, and the second covers a beat lost on the way.
	DefaultDrainBeats = 2
)

// Config configures an edge: its dt node, the listeners visitors reach it on, its
// certificates, what it reports in heartbeats and how it drains. New does not modify it.
type Config struct {
	// Host configures the edge's dt node, admin listener (whose /status adds the deploy under
	// "edge"), logger, metrics registry and process hooks (see nodehost.Config). Host.Node.DataDir
	// also holds the site's file data (DataDir/site) and the certificates (DataDir/certs);
	// Host.Node.NoSync applies to the file data too; Host.Version is reported in heartbeats.
	// Required: Host.Node.Keys and Host.Node.DataDir. An edge is never a master.
	Host nodehost.Config

	// HTTP is the address of the plain HTTP listener (host:port; port 0 picks one). With Domains
	// it answers ACME challenges and redirects to HTTPS; without, it serves the site. Empty:
	// none. At least one of HTTP and HTTPS is required.
	HTTP string
	// HTTPS is the address of the HTTPS listener (HTTP/2 and HTTP/1.1). Empty: none; Domains
	// then cannot be set.
	HTTPS string
	// Domains are the names to get certificates for by ACME (kept in DataDir/certs). Empty: a
	// locally generated certificate, which browsers warn about: for tests and private networks.
	Domains []string
	// ACMEDirectory is the ACME directory URL. Empty: Let's Encrypt's.
	ACMEDirectory string
	// ACMEEmail is the contact address of the ACME account. Empty: none.
	ACMEEmail string

	// PublicURL is where visitors reach this edge ("https://e1.example.com"), which redirectors
	// send them to. Empty: https://Domains[0] (with the HTTPS port unless 443), else the HTTPS
	// listener's address, else the HTTP listener's (an unspecified host read as localhost).
	PublicURL string
	// Name is what the operator calls the edge, in heartbeats and on dashboards. Empty: none
	// (dashboards show the public URL's host).
	Name string
	// IPv4 and IPv6 are the edge's public addresses, for the redirector's choice by address
	// family. When both are zero the edge reports the public addresses its dt peers see it at
	// (dt.Node.ObservedAddrs), one per family; with none of those, nothing (the redirector then
	// treats the edge as reachable by both families).
	IPv4, IPv6 netip.Addr
	// Location is where the edge is. Nil: looked up in GeoIP, else unknown (the redirector then
	// does not rank it by distance).
	Location *heartbeat.Location
	// GeoIP is a MaxMind-format database file in which the edge looks up its public address
	// when Location is nil, and its visitors' countries for its statistics. It stays open: the
	// address may be learned from peers later, and change. With a Location, a file that cannot
	// be opened is logged and the statistics count every country as unknown. Empty: no lookup.
	GeoIP string

	// HeartbeatInterval is how often the edge reports itself; each heartbeat announces it, so
	// receivers judge the edge by it. Shorter lets a crashed edge leave the redirectors' choice
	// sooner, for a message per edge to every node each interval. Zero: DefaultHeartbeatInterval.
	HeartbeatInterval time.Duration
	// DrainWait is how long a draining edge keeps serving after announcing the drain (health
	// 503, a draining heartbeat), so that redirectors move visitors away before the listeners
	// close. Longer is gentler to visitors, slower to stop. Zero: DefaultDrainBeats heartbeat
	// intervals.
	DrainWait time.Duration

	// StdHTTP1 serves plain HTTP/1.x with net/http's server instead of package h1's
	// (httpserve.Config.StdHTTP1): slower, a fallback should a client disagree with h1. False:
	// h1.
	StdHTTP1 bool
	// StdHTTP2 serves HTTP/2 with net/http's server instead of package h2's
	// (httpserve.Config.StdHTTP2): slower, a fallback should a client disagree with h2. False:
	// h2.
	StdHTTP2 bool
	// MaxConns, MaxConnsPerIP and FDReserve cap visitor connections over every listener: in
	// total, per IPv4 address or IPv6 /64, and within the descriptor limit less FDReserve
	// descriptors kept for the node's peers, database and files. Past a cap a connection is
	// reset at accept. Zero: internal/connlimit's defaults, 10,000 in total (lowered to fit the
	// descriptor limit), 256 per address, 1,024 kept; a negative FDReserve: no bound from the
	// descriptor limit.
	MaxConns, MaxConnsPerIP, FDReserve int

	// AccessLog, when set, writes a line for every response of a site (not of the health
	// endpoint or ACME challenges, nor requests the server refuses before the site sees them) to
	// an access log (package accesslog): off the request path, lines dropped and counted
	// (dt_edge_access_log_dropped_total) rather than a response delayed. Node.Reopen reopens its
	// file. Its Logger and Registerer, when nil, are the host's. Nil: no access log.
	AccessLog *accesslog.Config

	// StatsInterval is how often the edge sends its traffic per site (package trafficstats) as
	// a dt message, which redirectors keep as series. Shorter gives finer series for more
	// messages; a message is at most trafficstats.MaxSize whatever the traffic. Zero:
	// trafficstats.DefaultInterval; negative: no statistics (nothing counted or sent).
	StatsInterval time.Duration
}

// validate checks what can be checked before anything opens.
func (c *Config) validate() error {
	var errs []error
	if c.Host.Node.DataDir == "" {
		errs = append(errs, errors.New("edge: Config.Host.Node.DataDir is required"))
	}
	if c.Host.Node.Master {
		errs = append(errs, errors.New("edge: an edge is not a master"))
	}
	if c.HTTP == "" && c.HTTPS == "" {
		errs = append(errs, errors.New("edge: Config.HTTP or Config.HTTPS is required"))
	}
	if len(c.Domains) > 0 && c.HTTPS == "" {
		errs = append(errs, errors.New("edge: Config.Domains needs Config.HTTPS"))
	}
	if c.PublicURL != "" {
		u, err := url.Parse(c.PublicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("edge: Config.PublicURL %q is not an http(s) URL", c.PublicURL))
		}
	}
	if c.HeartbeatInterval < 0 || c.DrainWait < 0 {
		errs = append(errs, errors.New("edge: Config.HeartbeatInterval and Config.DrainWait cannot be negative"))
	}
	return errors.Join(errs...)
}

// withDefaults returns c with its zero durations set.
func (c Config) withDefaults() Config {
	if c.HeartbeatInterval == 0 {
		c.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if c.DrainWait == 0 {
		c.DrainWait = DefaultDrainBeats * c.HeartbeatInterval
	}
	if c.Host.Logger == nil {
		c.Host.Logger = slog.New(slog.DiscardHandler)
	}
	if c.StatsInterval == 0 {
		c.StatsInterval = trafficstats.DefaultInterval
	}
	return c
}
