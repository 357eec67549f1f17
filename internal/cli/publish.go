package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/dt-cdn/dt/dt"
	"github.com/dt-cdn/dt/internal/client"
	"github.com/dt-cdn/dt/publish"
	"github.com/dt-cdn/dt/site"
)

// Exit codes of dt publish and dt rollback beyond 0 (live on every live edge), 1 (failure) and 2
// (usage).
const (
	exitPartial = 3 // the deploy is the network's, but not every live edge serves it yet
	exitNoEdges = 4 // the deploy is the network's, but no edge reported in the wait
)

// exitCodeError carries a specific exit code to Run.
type exitCodeError struct {
	code int
	err  error
}

func (e *exitCodeError) Error() string { return e.err.Error() }
func (e *exitCodeError) Unwrap() error { return e.err }

// siteFlags are the flags shared by publish, deploys and rollback: where the keys are and how to
// reach the network, also read from the environment (DT_KEYS, DT_PEERS comma-separated) and from
// a config file (dt-publish.json in the current directory, or --config), in that order of
// precedence after the flags.
type siteFlags struct {
	config   string
	cacheDir string
	keys     string
	peers    stringList
	wait     time.Duration
	keep     int
	json     bool
	logLevel string
	site     string
}

// publishConfig is the config file: {"keys": "DIR", "peers": ["host:port", …]}.
type publishConfig struct {
	Keys  string   `json:"keys"`
	Peers []string `json:"peers"`
}

func (f *siteFlags) register(fs *flagSet) {
	fs.StringVar(&f.config, "config", "", "read keys and peers from `FILE` (default: dt-publish.json in the current directory, if present)")
	fs.StringVar(&f.keys, "keys", "", "`DIR` of keys written by dt keygen (env DT_KEYS)")
	fs.Var(&f.peers, "peer", "reach the network through the node at `ADDR`; repeatable (env DT_PEERS, comma-separated)")
	fs.DurationVar(&f.wait, "timeout", 2*time.Minute, "give up after `DURATION` without reaching and syncing with the network, or without a peer's\nconfirmation of a write, or without the edges serving the deploy")
	fs.BoolVar(&f.json, "json", false, "print a machine-readable summary on stdout")
	fs.StringVar(&f.logLevel, "log-level", "warn", "log `LEVEL` of the transient node on stderr")
	fs.StringVar(&f.cacheDir, "cache-dir", defaultCacheDir(), "keep a copy of the table (records, no file data) in `DIR` between runs, so each run syncs only what changed; empty: none")
}

// registerSite adds --site, for the commands that act on one site's deploys.
func (f *siteFlags) registerSite(fs *flagSet) {
	fs.StringVar(&f.site, "site", "", "act on the site `NAME` (see dt sites); may be left out when the network has one site")
}

// defaultCacheDir is the user's cache directory for publishing, or none when there is no such
// directory (no HOME).
func defaultCacheDir() string {
	d, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(d, "dt", "publish")
}

// resolve fills keys and peers from the environment and the config file, then checks them.
func (f *siteFlags) resolve(fs *flagSet) error {
	if f.keys == "" {
		f.keys = os.Getenv("DT_KEYS")
	}
	if len(f.peers) == 0 && os.Getenv("DT_PEERS") != "" {
		for _, p := range strings.Split(os.Getenv("DT_PEERS"), ",") {
			if p = strings.TrimSpace(p); p != "" {
				f.peers = append(f.peers, p)
			}
		}
	}
	path, explicit := f.config, f.config != ""
	if !explicit {
		path = "dt-publish.json"
	}
	if raw, err := os.ReadFile(path); err == nil {
		var c publishConfig
		if err := json.Unmarshal(raw, &c); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		if f.keys == "" {
			f.keys = c.Keys
		}
		if len(f.peers) == 0 {
			f.peers = c.Peers
		}
	} else if explicit || !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("read config: %w", err)
	}
	switch {
	case f.keys == "":
		return fs.usageErrorf("--keys is required (or DT_KEYS, or dt-publish.json)")
	case len(f.peers) == 0:
		return fs.usageErrorf("--peer is required (or DT_PEERS, or dt-publish.json)")
	case f.wait <= 0:
		return fs.usageErrorf("--timeout must be positive")
	case f.keep < 1 && fs.Name() == "publish":
		return fs.usageErrorf("--keep must be at least 1")
	}
	if err := checkPeerAddrs(f.peers); err != nil {
		return fs.usageErrorf("--peer: %v", err)
	}
	if _, err := parseLevel(f.logLevel); err != nil {
		return fs.usageErrorf("--log-level: %v", err)
	}
	return nil
}

// options loads the keys and builds the network options, with a watch of the peers: the
// returned context ends early once every peer failed for good, and the watch explains a failure
// to reach the network. needMaster is false for commands that only read (deploys, dry runs).
func (f *siteFlags) options(ctx context.Context, env *Env, needMaster bool) (publish.NetworkOptions, context.Context, *client.Watch, error) {
	keys, err := dt.LoadKeys(f.keys)
	if err != nil {
		return publish.NetworkOptions{}, nil, nil, err
	}
	if keys.Master == nil && keys.Publisher == nil && needMaster {
		return publish.NetworkOptions{}, nil, nil, fmt.Errorf("%s has no %s: %w", f.keys, dt.MasterKeyFile, ErrNoMasterKey)
	}
	log, err := newLogger(env.Stderr, f.logLevel, "text")
	if err != nil {
		return publish.NetworkOptions{}, nil, nil, err
	}
	log.Info("Starting", readBuildInfo().logAttrs()...)
	watch, ctx := client.NewWatch(ctx, f.peers)
	opts := publish.NetworkOptions{Keys: keys, Peers: f.peers, Site: f.site, Keep: f.keep, Wait: f.wait, ConnectTimeout: f.wait,
		Logger: log, CacheDir: f.cacheDir, Events: watch.Observe}
	opts.Node.Dial = watch.Dialer(nil)
	return opts, ctx, watch, nil
}

// publishFlags are dt publish's flags beyond siteFlags.
type publishFlags struct {
	dryRun, hidden, symlinks, spa, clean bool
	compression                          string
}

func (p *publishFlags) register(fs *flagSet, f *siteFlags) {
	fs.IntVar(&f.keep, "keep", publish.DefaultKeep, "keep the newest `N` deploys for rollback; collect older ones and the blobs only they use;\nwhen not given, the site's keep setting (dt site set --keep) applies, if it has one")
	fs.BoolVar(&p.dryRun, "dry-run", false, "list what would change and the bytes that would be sent; send nothing (needs no master.key)")
	fs.BoolVar(&p.hidden, "include-hidden", false, "publish hidden files (.well-known is always published; .git never)")
	fs.BoolVar(&p.symlinks, "follow-symlinks", false, "follow symbolic links that stay inside DIR")
	fs.BoolVar(&p.spa, "spa", false, "serve /index.html for paths that match nothing (single-page applications);\nwhen not given, the site's setting (dt site set --spa) applies, or else the current deploy's\nsetting is kept (--spa=false turns it off)")
	fs.BoolVar(&p.clean, "clean-urls", false, "serve /about.html at /about;\nwhen not given, the site's setting (dt site set --clean-urls) applies, or else the current\ndeploy's setting is kept (--clean-urls=false turns it off)")
	fs.StringVar(&p.compression, "compression", "auto", "precompress text `LEVEL`: best (brotli 11, about 1 MB/s per CPU), fast (brotli 6, over ten times faster, variants a few percent larger), or auto (best for sites up to 64 MB, fast above)")
}

func runPublish(ctx context.Context, args []string, env *Env) error {
	var (
		f siteFlags
		p publishFlags
	)
	fs := newFlagSet(env, "publish", "dt publish [flags] DIR   (the same as dt-publish [flags] DIR)",
		"Publishes the static site in DIR: hashes every file, sends only the blobs the network lacks\n"+
			"(compressed, as dt objects), then switches the network to the new deploy. Edges switch\n"+
			"only once they hold all of it. Waits until the edges report it and prints where it is live.\n"+
			"A site identical to the current deploy makes no new deploy. The directory, _redirects and\n"+
			"_headers are checked before any peer is dialed.\n"+
			"Exit status: 0 live on every live edge; 3 live on some; 4 no edge reported; 1 failure.")
	f.register(fs)
	f.registerSite(fs)
	p.register(fs, &f)
	if err := fs.parse(args); err != nil {
		return err
	}
	if err := fs.wantArgs(1, "DIR"); err != nil {
		return err
	}
	level, err := publish.ParseCompression(p.compression)
	if err != nil {
		return fs.usageErrorf("--compression: want auto, best or fast")
	}
	if err := f.resolve(fs); err != nil {
		return err
	}
	dir := fs.Arg(0)
	if err := publish.CheckDir(dir); err != nil {
		return err
	}
	opts, ctx, watch, err := f.options(ctx, env, !p.dryRun)
	if err != nil {
		return err
	}
	defer watch.Stop()
	given := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { given[fl.Name] = true })
	out := newProgress(env, f.json)
	began := time.Now()
	scan := publish.ScanOptions{
		IncludeHidden: p.hidden, FollowSymlinks: p.symlinks, SPA: p.spa, CleanURLs: p.clean, Compression: level,
		KeepSPA: !given["spa"], KeepCleanURLs: !given["clean-urls"],
		Progress: func(pr publish.Progress) { out.bar("hashing", pr.Bytes, pr.BytesTotal, began) },
	}
	if !given["keep"] {
		opts.Keep = 0 // the site's keep setting, or publish.DefaultKeep
	}
	opts.Scanned = func(plan *publish.Plan) { out.scanned(plan, began) }
	opts.DryRun = p.dryRun
	opts.Progress = out.publishSteps(f.peers)
	// Linking first lets unchanged files reuse the current deploy's compressed variants.
	res, err := publish.PublishDir(ctx, dir, scan, opts)
	return reportPublish(env, out, f.json, res, explainRefusal(explainPeers(ctx, err, watch, f.wait, "--timeout"), opts.Keys, f.site))
}

// scanned reports a finished scan: its size and time, and its warnings.
func (p *progress) scanned(plan *publish.Plan, began time.Time) {
	p.done("hashed %d files (%s) in %s", len(plan.Manifest.Files), sizeOf(total(plan)), time.Since(began).Round(time.Millisecond))
	for _, w := range plan.Warnings {
		p.line("warning: %s", w)
	}
}

// publishSteps returns the progress function of a publish: a line per phase, a bar while
// uploading, and the edges' count while waiting.
func (p *progress) publishSteps(peers []string) func(publish.Step) {
	var uploaded publish.Step
	uploadBegan := time.Now()
	return func(s publish.Step) {
		switch s.Phase {
		case publish.PhaseConnecting:
			p.line("connecting to %s", strings.Join(peers, ", "))
		case publish.PhaseUploading:
			if uploaded.Phase == "" {
				uploadBegan = time.Now()
			}
			uploaded = s
			p.bar("uploading", s.BytesSent, s.BytesTotal, uploadBegan)
		case publish.PhaseSwitching:
			p.done("uploaded %d of %d blobs (%s) in %s", uploaded.BlobsSent, uploaded.BlobsTotal, sizeOf(uploaded.BytesSent), time.Since(uploadBegan).Round(time.Millisecond))
		case publish.PhaseWaiting:
			p.status("live on %d/%d edges", s.EdgesLive, s.EdgesTotal)
		}
	}
}

// reportPublish prints the outcome and picks the exit code.
func reportPublish(env *Env, out *progress, asJSON bool, res publish.Result, err error) error {
	failed := err != nil && !errors.Is(err, publish.ErrNotLive) && !errors.Is(err, publish.ErrNoEdges)
	if failed {
		// Whatever the result holds, it is not a publish that happened: stdout stays empty.
		return err
	}
	if asJSON {
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		if jerr := enc.Encode(res); jerr != nil {
			return jerr
		}
	} else {
		out.done("")
		if res.DryRun {
			printDryRun(env.Stdout, res)
			return err
		}
		printPublished(env.Stdout, res)
	}
	switch {
	case errors.Is(err, publish.ErrNotLive):
		return &exitCodeError{code: exitPartial, err: err}
	case errors.Is(err, publish.ErrNoEdges):
		return &exitCodeError{code: exitNoEdges, err: err}
	}
	return err
}

// printDryRun prints what a publish would change.
func printDryRun(w io.Writer, res publish.Result) {
	d := res.Diff
	for _, p := range d.Added {
		fmt.Fprintf(w, "+ %s\n", p)
	}
	for _, p := range d.Changed {
		fmt.Fprintf(w, "~ %s\n", p)
	}
	for _, p := range d.Deleted {
		fmt.Fprintf(w, "- %s\n", p)
	}
	if res.Unchanged {
		fmt.Fprintf(w, "dry run: nothing changed since the current deploy %s; no deploy would be made\n", res.Deploy)
	} else {
		fmt.Fprintf(w, "dry run: %d added, %d changed, %d deleted; would send %d blobs (%s)\n",
			len(d.Added), len(d.Changed), len(d.Deleted), len(d.Send), sizeOf(d.SendBytes))
	}
	fmt.Fprintf(w, "settings: %s\n", settingsOf(res.SPA, res.CleanURLs))
}

// printPublished prints the deploy a publish or rollback made current, and where it is live.
func printPublished(w io.Writer, res publish.Result) {
	d := res.Diff
	if res.Unchanged {
		fmt.Fprintf(w, "nothing changed: the site is the current deploy %s; no new deploy made\n", res.Deploy)
	} else {
		fmt.Fprintf(w, "deploy %s: %d files; %d added, %d changed, %d deleted; sent %d blobs (%s)\n",
			res.Deploy, res.Files, len(d.Added), len(d.Changed), len(d.Deleted), res.BlobsSent, sizeOf(res.BytesSent))
	}
	fmt.Fprintf(w, "settings: %s\n", settingsOf(res.SPA, res.CleanURLs))
	if res.Site != "" && res.Site != site.DefaultSite {
		fmt.Fprintf(w, "site: %s\n", res.Site)
	}
	fmt.Fprintf(w, "live on %d/%d edges\n", res.EdgesLive, len(res.Edges))
	for _, e := range res.Edges {
		state := "live"
		if !e.Live {
			state = "not yet (serves " + short(e.Deploy) + ")"
		}
		fmt.Fprintf(w, "  %s  %s\n", e.URL, state)
	}
	for _, id := range res.Collected {
		fmt.Fprintf(w, "collected deploy %s\n", id.Short())
	}
}

// settingsOf names a deploy's serving settings as the flags that set them.
func settingsOf(spa, clean bool) string {
	return fmt.Sprintf("--spa=%t --clean-urls=%t", spa, clean)
}

func short(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	if s == "" {
		return "nothing"
	}
	return s
}

func total(p *publish.Plan) int64 {
	var n int64
	for _, f := range p.Manifest.Files {
		n += f.Size
	}
	return n
}

// call joins the network as f's flags say (as a master when master), runs do on it and explains
// a failure by what the peers did: the lifecycle every command on a site shares once its own
// arguments are checked.
func (f *siteFlags) call(ctx context.Context, env *Env, fs *flagSet, master bool, do func(context.Context, publish.NetworkOptions) error) error {
	if err := f.resolve(fs); err != nil {
		return err
	}
	opts, ctx, watch, err := f.options(ctx, env, master)
	if err != nil {
		return err
	}
	defer watch.Stop()
	if err := do(ctx, opts); err != nil {
		return explainRefusal(explainPeers(ctx, err, watch, f.wait, "--timeout"), opts.Keys, f.site)
	}
	return nil
}

// writeIndented writes v as indented JSON, as the listing commands' --json do.
func writeIndented(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func runDeploys(ctx context.Context, args []string, env *Env) error {
	var f siteFlags
	fs := newFlagSet(env, "deploys", "dt deploys --keys DIR --peer ADDR [--site NAME] [--json]",
		"Lists the deploys the network keeps, newest first: id, time, files, size, and the edges\n"+
			"serving each (from a few seconds of heartbeats). The current one is marked with *.")
	f.register(fs)
	f.registerSite(fs)
	if err := fs.parse(args); err != nil {
		return err
	}
	if err := fs.wantArgs(0, ""); err != nil {
		return err
	}
	var list []publish.DeployInfo
	err := f.call(ctx, env, fs, false, func(ctx context.Context, opts publish.NetworkOptions) (err error) {
		list, err = publish.Deploys(ctx, opts)
		return err
	})
	if err != nil {
		return err
	}
	if f.json {
		return writeIndented(env.Stdout, list)
	}
	if len(list) == 0 {
		fmt.Fprintln(env.Stderr, "no deploys yet: publish a site with `dt publish --keys DIR --peer ADDR SITEDIR`")
		return nil
	}
	for _, d := range list {
		mark := " "
		if d.Current {
			mark = "*"
		}
		fmt.Fprintf(env.Stdout, "%s %s  %s  %5d files  %9s  %s  %s\n", mark, d.ID.Short(),
			d.Created.Local().Format(time.DateTime), d.Files, sizeOf(d.Bytes), settingsOf(d.SPA, d.CleanURLs), liveOnList(d.LiveOn))
	}
	return nil
}

// liveOnList says which edges serve a deploy, for dt deploys.
func liveOnList(edges []string) string {
	if len(edges) == 0 {
		return "live on no edge"
	}
	return fmt.Sprintf("live on %d: %s", len(edges), strings.Join(edges, " "))
}

func runRollback(ctx context.Context, args []string, env *Env) error {
	var f siteFlags
	fs := newFlagSet(env, "rollback", "dt rollback --keys DIR --peer ADDR [--site NAME] [ID]",
		"Makes a kept deploy current again, uploading nothing; by default the one published before\n"+
			"the current one. ID is a deploy id as dt deploys prints it (a unique prefix will do).\n"+
			"Waits for the edges like dt publish and exits with the same codes.")
	f.register(fs)
	f.registerSite(fs)
	if err := fs.parse(args); err != nil {
		return err
	}
	if fs.NArg() > 1 {
		return fs.usageErrorf("at most one deploy id")
	}
	if err := f.resolve(fs); err != nil {
		return err
	}
	opts, ctx, watch, err := f.options(ctx, env, true)
	if err != nil {
		return err
	}
	defer watch.Stop()
	var id site.DeployID
	if fs.NArg() == 1 {
		if id, err = publish.FindDeploy(ctx, opts, fs.Arg(0)); err != nil {
			return explainPeers(ctx, err, watch, f.wait, "--timeout")
		}
	}
	out := newProgress(env, f.json)
	res, err := publish.Rollback(ctx, id, opts)
	if err != nil && !errors.Is(err, publish.ErrNotLive) && !errors.Is(err, publish.ErrNoEdges) {
		return explainRefusal(explainPeers(ctx, err, watch, f.wait, "--timeout"), opts.Keys, f.site)
	}
	return reportPublish(env, out, f.json, res, err)
}

// progress prints a publish's progress on stderr: a redrawn bar on a terminal, plain lines
// otherwise, nothing with --json.
type progress struct {
	w          io.Writer
	tty        bool
	quiet      bool
	drawing    bool
	last       time.Time
	lastStatus string
}

func newProgress(env *Env, quiet bool) *progress {
	p := &progress{w: env.Stderr, quiet: quiet}
	if f, ok := env.Stderr.(*os.File); ok {
		p.tty = term.IsTerminal(int(f.Fd()))
	}
	return p
}

func (p *progress) line(format string, args ...any) {
	if p.quiet {
		return
	}
	p.clear()
	fmt.Fprintf(p.w, format+"\n", args...)
}

// done ends a bar with a summary line (an empty format only ends the bar).
func (p *progress) done(format string, args ...any) {
	if format == "" {
		p.clear()
		return
	}
	p.line(format, args...)
}

func (p *progress) clear() {
	if p.drawing {
		fmt.Fprint(p.w, "\r\033[K")
		p.drawing = false
	}
}

// bar shows how far a phase is: bytes, percentage, rate and time left.
func (p *progress) bar(what string, done, total int64, began time.Time) {
	if p.quiet || !p.tty || time.Since(p.last) < 100*time.Millisecond && done < total {
		return
	}
	p.last = time.Now()
	const width = 30
	frac := 1.0
	if total > 0 {
		frac = float64(done) / float64(total)
	}
	rate := float64(done) / max(time.Since(began).Seconds(), 1e-3)
	eta := ""
	if rate > 0 && done < total {
		eta = " ETA " + time.Duration(float64(total-done)/rate*float64(time.Second)).Round(time.Second).String()
	}
	filled := int(frac * width)
	fmt.Fprintf(p.w, "\r\033[K%-9s [%s%s] %3.0f%% %s/%s %s/s%s", what, strings.Repeat("=", filled), strings.Repeat(" ", width-filled),
		frac*100, sizeOf(done), sizeOf(total), sizeOf(int64(rate)), eta)
	p.drawing = true
}

// status shows a one-line state that replaces itself on a terminal and prints on change otherwise.
func (p *progress) status(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if p.quiet || msg == p.lastStatus {
		return
	}
	p.lastStatus = msg
	if p.tty {
		fmt.Fprint(p.w, "\r\033[K"+msg)
		p.drawing = true
		return
	}
	fmt.Fprintln(p.w, msg)
}

// sizeOf formats a byte count.
func sizeOf(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
