package cli

import (
	"context"
	"net/netip"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/dt-cdn/dt/heartbeat"
	"github.com/dt-cdn/dt/nodehost"
	"github.com/dt-cdn/dt/redirector"
)

// redirectorFlags are dt redirector's own flags, beside the node's.
type redirectorFlags struct {
	servingFlags
	geoip     string
	code      int
	trusted   stringList
	heartbeat time.Duration
}

func runRedirector(ctx context.Context, args []string, env *Env) error {
	var (
		nf nodeFlags
		rf redirectorFlags
	)
	fs := newFlagSet(env, "redirector", "dt redirector --keys DIR --data DATADIR --peer ADDR... [--listen ADDR] --http ADDR [--https ADDR] [--domain NAME]... [--geoip FILE.mmdb] [--redirect-code 301|302|307|308] [--trusted-proxy CIDR]... [--admin ADDR]",
		"Runs a redirector: a dt node that follows the edges' heartbeats and the current deploy, and\n"+
			"answers every visitor with a redirect to the nearest live edge that serves it. Point the\n"+
			"site's public name here. The admin listener serves the dashboard at / (every edge, a map,\n"+
			"the deploys, live), adds /explain?ip=ADDR (why each edge would or would not get that\n"+
			"client) and the edges to /status. SIGHUP reloads the GeoIP database.")
	nf.register(fs)
	rf.servingFlags.register(fs, "serve visitors over HTTP on `ADDR` (host:port); it also answers ACME challenges")
	fs.StringVar(&rf.geoip, "geoip", "", "locate visitors with the MaxMind-format database `FILE.mmdb` (reloaded when the file changes)")
	fs.IntVar(&rf.code, "redirect-code", redirector.DefaultCode, "redirect with status `CODE`: 301, 302, 307 or 308 (every redirect carries Cache-Control: private, no-store)")
	fs.Var(&rf.trusted, "trusted-proxy", "believe X-Forwarded-For and Forwarded from `CIDR`; repeatable")
	fs.DurationVar(&rf.heartbeat, "heartbeat-interval", heartbeat.DefaultInterval, "the heartbeat `INTERVAL` to assume for edges older than this release, which do not announce theirs")
	if err := parsePlainNode(fs, args, &nf, "a redirector"); err != nil {
		return err
	}
	cfg, err := rf.config(fs)
	if err != nil {
		return err
	}
	return runRole(ctx, env, &nf, func(host nodehost.Config) (reloadOnSIGHUP, error) {
		cfg.Host = host
		r, err := redirector.New(cfg)
		return reloadOnSIGHUP{r}, err
	})
}

// reloadOnSIGHUP runs a redirector that reloads its GeoIP database on each SIGHUP while it runs.
type reloadOnSIGHUP struct{ *redirector.Node }

func (r reloadOnSIGHUP) Run(ctx context.Context) error {
	stop := onSIGHUP(func() { _ = r.Reload() }) // Reload logs what it did
	defer stop()
	return r.Node.Run(ctx)
}

// config checks the redirector's flags and turns them into its Config, without the host's part.
func (rf *redirectorFlags) config(fs *flagSet) (redirector.Config, error) {
	if err := rf.servingFlags.check(fs); err != nil {
		return redirector.Config{}, err
	}
	switch rf.code {
	case 301, 302, 307, 308:
	default:
		return redirector.Config{}, fs.usageErrorf("--redirect-code must be 301, 302, 307 or 308")
	}
	var trusted []netip.Prefix
	for _, c := range rf.trusted {
		p, err := netip.ParsePrefix(c)
		if err != nil {
			return redirector.Config{}, fs.usageErrorf("--trusted-proxy %q: %v", c, err)
		}
		trusted = append(trusted, p.Masked())
	}
	return redirector.Config{
		HTTP: rf.http, HTTPS: rf.https, Domains: rf.domains, ACMEDirectory: rf.acmeDir, ACMEEmail: rf.acmeEmail,
		GeoIP: rf.geoip, Code: rf.code, TrustedProxies: trusted, HeartbeatInterval: rf.heartbeat,
		MaxConns: rf.conns.max, MaxConnsPerAddr: rf.conns.perIP, FDReserve: rf.conns.fdReserve,
	}, nil
}

// onSIGHUP calls f on each SIGHUP until the returned stop function is called; stop waits for a
// call in progress.
func onSIGHUP(f func()) (stop func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-hup:
				f()
			case <-done:
				return
			}
		}
	})
	return func() {
		signal.Stop(hup)
		close(done)
		wg.Wait()
	}
}
