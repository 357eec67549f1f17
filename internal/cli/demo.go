package cli

import (
	"bytes"
	"context"
	"embed"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/dt-cdn/dt/dt"
	"github.com/dt-cdn/dt/edge"
	"github.com/dt-cdn/dt/heartbeat"
	"github.com/dt-cdn/dt/nodehost"
	"github.com/dt-cdn/dt/publish"
	"github.com/dt-cdn/dt/redirector"
)

// demoSite is the example site `dt demo` publishes unless --publish names another.
//
//go:embed demosite
var demoSite embed.FS

// demoEdges are the demo's edges, each at a distinct place.
var demoEdges = []struct {
	name string
	loc  heartbeat.Location
}{
	{"amsterdam", heartbeat.Location{Lat: 52.37, Lon: 4.90, Country: "NL", Continent: "EU"}},
	{"new-york", heartbeat.Location{Lat: 40.71, Lon: -74.01, Country: "US", Continent: "NA"}},
	{"tokyo", heartbeat.Location{Lat: 35.68, Lon: 139.69, Country: "JP", Continent: "AS"}},
}

// demoLargeFile is the size of the large file added to the example site.
const demoLargeFile = 8 << 20

func runDemo(ctx context.Context, args []string, env *Env) error {
	var (
		keep    bool
		siteDir string
		level   string
	)
	fs := newFlagSet(env, "demo", "dt demo [--publish DIR] [--keep]",
		"Runs a whole CDN on this machine: a redirector and three edges (Amsterdam, New York, Tokyo)\n"+
			"on loopback, publishes an example site (or --publish DIR) through a transient master, and\n"+
			"prints the URLs. Runs until interrupted, then stops everything and removes its data.")
	fs.BoolVar(&keep, "keep", false, "keep the temporary keys and data directories")
	fs.StringVar(&siteDir, "publish", "", "publish the site in `DIR` instead of the example")
	fs.StringVar(&level, "log-level", "warn", "log `LEVEL` of the nodes on stderr")
	if err := fs.parse(args); err != nil {
		return err
	}
	if err := fs.wantArgs(0, ""); err != nil {
		return err
	}
	log, err := newLogger(env.Stderr, level, "text")
	if err != nil {
		return fs.usageErrorf("--log-level: %v", err)
	}
	tmp, err := os.MkdirTemp("", "dt-demo-")
	if err != nil {
		return err
	}
	if keep {
		defer fmt.Fprintf(env.Stdout, "kept:        %s\n", tmp)
	} else {
		defer os.RemoveAll(tmp)
	}
	// The example site links to /about, so it needs clean URLs; a site of the user's gets what
	// dt publish gives it, so that the two agree and a republish changes nothing.
	scan := publish.ScanOptions{}
	if siteDir == "" {
		scan.CleanURLs = true
		if siteDir, err = writeDemoSite(filepath.Join(tmp, "site")); err != nil {
			return err
		}
	}
	d := &demo{tmp: tmp, log: log}
	defer d.stop()
	return d.run(ctx, env, siteDir, scan)
}

// writeDemoSite copies the embedded example into dir and adds a large generated file.
func writeDemoSite(dir string) (string, error) {
	sub, err := fs.Sub(demoSite, "demosite")
	if err != nil {
		return "", err
	}
	if err := os.CopyFS(dir, sub); err != nil {
		return "", fmt.Errorf("write example site: %w", err)
	}
	big := make([]byte, demoLargeFile)
	r := rand.NewChaCha8([32]byte{'d', 't'})
	_, _ = r.Read(big)
	if err := os.MkdirAll(filepath.Join(dir, "files"), 0o755); err != nil {
		return "", err
	}
	return dir, os.WriteFile(filepath.Join(dir, "files", "big.bin"), big, 0o644)
}

// demo holds everything the demo started, to stop it.
type demo struct {
	tmp string
	log *slog.Logger

	cancel context.CancelFunc
	wg     sync.WaitGroup // every role's Run
}

// demoEdgeDrain is how long a demo edge keeps serving once the demo stops: enough for the
// redirector to hear its draining heartbeat, short enough that Ctrl-C feels immediate.
const demoEdgeDrain = 500 * time.Millisecond

func (d *demo) run(ctx context.Context, env *Env, siteDir string, scan publish.ScanOptions) error {
	keysDir := filepath.Join(d.tmp, "keys")
	if err := dt.GenerateKeys(keysDir, nil); err != nil {
		return err
	}
	keys, err := dt.LoadKeys(keysDir)
	if err != nil {
		return err
	}
	plain := keys
	plain.Master = nil
	runCtx, cancel := context.WithCancel(context.Background())
	d.cancel = cancel
	peer, edgeURLs, err := d.startEdges(runCtx, plain)
	if err != nil {
		return err
	}
	redirectURL, adminURL, err := d.startRedirector(runCtx, plain, peer)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "publishing:  %s\n", siteDir)
	if err := d.publish(ctx, env, siteDir, scan, keys, peer); err != nil {
		return err
	}
	// The publisher saw the edges' heartbeats; the redirector sees them on its own clock. The
	// URLs are printed once a visitor would be redirected, so the first click works.
	if err := waitRedirecting(ctx, redirectURL, time.Minute); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "redirector:  %s\n", redirectURL)
	for i, u := range edgeURLs {
		fmt.Fprintf(env.Stdout, "edge:        %s  (%s)\n", u, demoEdges[i].name)
	}
	fmt.Fprintf(env.Stdout, "dashboard:   %s/\n", adminURL)
	fmt.Fprintf(env.Stdout, "explain:     %s/explain?ip=203.0.113.7\n", adminURL)
	fmt.Fprintf(env.Stdout, "keys:        %s (publish more with: dt publish --keys %s --peer %s DIR)\n", keysDir, keysDir, peer)
	fmt.Fprintln(env.Stdout, "Ctrl-C stops the demo.")
	<-ctx.Done()
	return nil
}

// startEdges starts the demo's edges through edge.Node's Run. The first edge's node listens:
// the other edges, the redirector and the publisher link to it. (A redirector keeps no file
// data, so it is no place for edges to fetch it from.) It returns that node's address and the
// edges' URLs.
func (d *demo) startEdges(ctx context.Context, keys dt.Keys) (peer string, urls []string, err error) {
	for i, de := range demoEdges {
		ready := make(chan nodehost.Ready, 1)
		host := nodehost.Config{Node: d.nodeConfig(keys, de.name, i == 0, nil, false), Logger: d.log.With("edge", de.name),
			Ready: func(r nodehost.Ready) error { ready <- r; return nil }}
		if i > 0 {
			host.Node.Peers = []string{peer}
		}
		cfg := edge.Config{Host: host, HTTP: "127.0.0.1:0", IPv4: mustAddr("127.0.0.1"),
			Name: de.name, Location: &de.loc, DrainWait: demoEdgeDrain}
		e, err := edge.New(cfg)
		if err != nil {
			return "", nil, err
		}
		r, err := d.start(ctx, e.Run, ready)
		if err != nil {
			return "", nil, fmt.Errorf("edge %s: %w", de.name, err)
		}
		if i == 0 {
			peer = r.Listen[0]
		}
		urls = append(urls, r.Serving.PublicURL)
	}
	return peer, urls, nil
}

// start runs a role in the background until ctx ends, and returns once it serves, or its error
// if it stopped before.
func (d *demo) start(ctx context.Context, run func(context.Context) error, ready <-chan nodehost.Ready) (nodehost.Ready, error) {
	failed := make(chan error, 1)
	d.wg.Go(func() {
		if err := run(ctx); err != nil {
			failed <- err
			d.log.Warn("Demo node stopped", slog.Any("err", err))
		}
	})
	select {
	case r := <-ready:
		return r, nil
	case err := <-failed:
		return nodehost.Ready{}, err
	}
}

// publish publishes the site through a transient master linked to peer.
func (d *demo) publish(ctx context.Context, env *Env, siteDir string, scan publish.ScanOptions, keys dt.Keys, peer string) error {
	plan, err := publish.Scan(ctx, siteDir, scan)
	if err != nil {
		return err
	}
	defer plan.Close()
	res, err := publish.Publish(ctx, plan, publish.NetworkOptions{Keys: keys, Peers: []string{peer}, Wait: time.Minute, Node: dt.LocalConfig(), Logger: d.log})
	if err != nil {
		return fmt.Errorf("publish the example: %w", err)
	}
	fmt.Fprintf(env.Stdout, "deploy:      %s (%d files, %d blobs sent, live on %d/%d edges; settings %s, kept by later publishes)\n",
		res.Deploy.Short(), res.Files, res.BlobsSent, res.EdgesLive, len(res.Edges), settingsOf(res.SPA, res.CleanURLs))
	return nil
}

// waitRedirecting asks the redirector at url for / until it answers with a redirect.
func waitRedirecting(ctx context.Context, url string, within time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	last := "no answer"
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/", nil)
		if err != nil {
			return err
		}
		if resp, err := client.Do(req); err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
			resp.Body.Close()
			if resp.StatusCode >= 300 && resp.StatusCode < 400 {
				return nil
			}
			last = fmt.Sprintf("%s: %s", resp.Status, bytes.TrimSpace(body))
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the redirector sends visitors nowhere (%s)", last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// startRedirector runs the demo's redirector as dt redirector runs one, through its role, linked
// to peer: the dashboard, /status, /explain and /metrics on its admin listener. It returns the
// URLs of its visitor and admin listeners once both serve; it stops when ctx ends.
func (d *demo) startRedirector(ctx context.Context, keys dt.Keys, peer string) (redirectURL, adminURL string, err error) {
	ready := make(chan nodehost.Ready, 1)
	r, err := redirector.New(redirector.Config{
		Host: nodehost.Config{Node: d.nodeConfig(keys, "redirector", false, []string{peer}, true), Admin: "127.0.0.1:0", Logger: d.log,
			Ready: func(r nodehost.Ready) error { ready <- r; return nil }},
		HTTP: "127.0.0.1:0",
		Code: http.StatusFound,
	})
	if err != nil {
		return "", "", err
	}
	rd, err := d.start(ctx, r.Run, ready)
	if err != nil {
		return "", "", fmt.Errorf("redirector: %w", err)
	}
	return "http://" + rd.Serving.HTTP, "http://" + rd.Admin, nil
}

// nodeConfig configures a node of the demo.
func (d *demo) nodeConfig(keys dt.Keys, name string, listen bool, peers []string, lazy bool) dt.Config {
	cfg := dt.LocalConfig()
	cfg.Keys, cfg.DataDir, cfg.Peers, cfg.LazyBodies = keys, filepath.Join(d.tmp, name), peers, lazy
	cfg.Logger = d.log.With("node", name)
	if listen {
		cfg.Listen = []string{"127.0.0.1:0"}
	}
	return cfg
}

// stop stops every role and waits until each has stopped: the edges drain meanwhile.
func (d *demo) stop() {
	if d.cancel != nil {
		d.cancel()
	}
	d.wg.Wait()
}

func mustAddr(s string) (a netip.Addr) {
	a, _ = netip.ParseAddr(s)
	return a
}
