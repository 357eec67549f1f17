package cli

import (
	"context"
	"time"

	"github.com/dt-cdn/dt/dns"
	"github.com/dt-cdn/dt/dns/server"
	"github.com/dt-cdn/dt/dns/zone"
	"github.com/dt-cdn/dt/heartbeat"
	"github.com/dt-cdn/dt/nodehost"
)

// dnsFlags are dt dns's own flags, beside the node's.
type dnsFlags struct {
	resolverFlags
	addr       string
	maxUDP     int
	geoName    string
	geoip      string
	geoTTL     time.Duration
	geoAnswers int
	heartbeat  time.Duration
	cdnNS      stringList
}

func runDNS(ctx context.Context, args []string, env *Env) error {
	var (
		nf nodeFlags
		df dnsFlags
	)
	fs := newFlagSet(env, "dns", "dt dns --keys DIR --data DATADIR --peer ADDR... --dns ADDR [--listen ADDR] [--admin ADDR] [--geo-name NAME] [--geoip FILE.mmdb] [--geo-ttl 20s] [--cdn-ns NAME]... [--resolver ADDR]...",
		"Runs a DNS node: a dt node that answers DNS over UDP and TCP on --dns, authoritatively, for\n"+
			"the zones its table holds (written by dt dns-publish). Every DNS node of a network answers\n"+
			"alike, and one that was offline catches up when it reconnects.\n"+
			"With --geo-name, A and AAAA queries for the site's public name are answered with the\n"+
			"nearest live edges, chosen as the redirector chooses, from the edges' heartbeats; the\n"+
			"client is located by EDNS Client Subnet or the resolver's address (--geoip). The name must\n"+
			"lie in a published zone; its own A/AAAA records there answer when no edge is live.\n"+
			"When the network has a CDN zone (dt network set --cdn-zone), the node answers it too:\n"+
			"<edge>.<zone>, <site>.<zone> (GeoDNS), <site>--<edge>.<zone> and previews, made from the\n"+
			"heartbeats and the sites; its SOA and NS are a published zone's of that apex, else made\n"+
			"from --cdn-ns. It answers ACME DNS-01 challenges from the table in every zone it serves.\n"+
			"The node also answers dt resolve with --resolver (or the system's resolvers). The admin\n"+
			"listener adds /dns (the zones and, with --geo-name, the edges).")
	nf.register(fs)
	df.resolverFlags.register(fs)
	fs.StringVar(&df.addr, "dns", "", "answer DNS on `ADDR` over UDP and TCP (host:port; port 53 needs CAP_NET_BIND_SERVICE); required")
	fs.IntVar(&df.maxUDP, "max-udp-size", server.DefaultMaxUDPSize, "largest UDP answer in `BYTES`; larger ones are truncated and retried over TCP")
	fs.StringVar(&df.geoName, "geo-name", "", "answer A and AAAA for `NAME` (the site's public name) with the nearest live edges")
	fs.StringVar(&df.geoip, "geoip", "", "locate clients with the MaxMind-format database `FILE.mmdb` (reloaded when the file changes); without it every live edge is in each answer")
	fs.DurationVar(&df.geoTTL, "geo-ttl", dns.DefaultGeoTTL, "`TTL` of GeoDNS answers: how long resolvers may keep an edge that has since failed")
	fs.IntVar(&df.geoAnswers, "geo-answers", dns.DefaultGeoAnswers, "at most `N` addresses in a GeoDNS answer")
	fs.Var(&df.cdnNS, "cdn-ns", "the CDN zone is delegated to the name server `NAME` (as the NS records at its parent say), for its SOA and NS when no zone of its apex is published; repeatable")
	fs.DurationVar(&df.heartbeat, "heartbeat-interval", heartbeat.DefaultInterval, "the heartbeat `INTERVAL` to assume for edges older than this release, which do not announce theirs")
	if err := parsePlainNode(fs, args, &nf, "a DNS node"); err != nil {
		return err
	}
	cfg, err := df.config(fs)
	if err != nil {
		return err
	}
	return runRole(ctx, env, &nf, func(host nodehost.Config) (*dns.Node, error) {
		cfg.Host = host
		return dns.New(cfg)
	})
}

// config checks the DNS node's flags and turns them into its Config, without the host's part.
func (df *dnsFlags) config(fs *flagSet) (dns.Config, error) {
	switch {
	case df.addr == "":
		return dns.Config{}, fs.usageErrorf("--dns is required")
	case df.geoName == "" && len(df.cdnNS) == 0 && df.geoip != "":
		return dns.Config{}, fs.usageErrorf("--geoip needs --geo-name or --cdn-ns")
	case df.geoName != "" && zone.CanonicalName(df.geoName) == "":
		return dns.Config{}, fs.usageErrorf("--geo-name %q is not a domain name", df.geoName)
	case df.geoTTL < dns.MinGeoTTL || df.geoAnswers < 1 || df.heartbeat <= 0:
		return dns.Config{}, fs.usageErrorf("--geo-ttl must be at least 1s, --geo-answers and --heartbeat-interval positive")
	}
	for _, ns := range df.cdnNS {
		if zone.CanonicalName(ns) == "" {
			return dns.Config{}, fs.usageErrorf("--cdn-ns %q is not a domain name", ns)
		}
	}
	return dns.Config{Addr: df.addr, MaxUDPSize: df.maxUDP, GeoName: df.geoName, GeoIP: df.geoip, GeoTTL: df.geoTTL,
		GeoAnswers: df.geoAnswers, HeartbeatInterval: df.heartbeat, Resolvers: df.servers, CDNNameServers: df.cdnNS}, nil
}
