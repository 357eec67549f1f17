package cli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/dt-cdn/dt/publish"
	"github.com/dt-cdn/dt/site"
)

const siteAbout = "Manages the sites of the network: each site has a name (a DNS label) and the hosts it is\n" +
	"served on (exact names, or *.name for one label more). A network published to before it had\n" +
	"sites has one site, default, which serves every host no other site claims until it is given\n" +
	"hosts of its own (dt site set default --host ...). Needs master.key in the keys directory."

func runSite(ctx context.Context, args []string, env *Env) error {
	if len(args) > 0 {
		switch args[0] {
		case "add":
			return runSiteWrite(ctx, "site add", args[1:], env, publish.AddSiteSpec)
		case "set":
			return runSiteWrite(ctx, "site set", args[1:], env, publish.UpdateSite)
		case "remove":
			return runSiteRemove(ctx, args[1:], env)
		}
	}
	var (
		f     siteFlags
		hosts stringList
	)
	fs := newFlagSet(env, "site", "dt site add|set|remove NAME [--host HOST...] --keys DIR --peer ADDR", siteAbout+"\n\n"+
		"  dt site add NAME --host H...   add a site; refused for a name or host taken already\n"+
		"  dt site set NAME --host H...   replace the hosts of a site\n"+
		"  dt site set NAME --spa ...     set a site's serving settings (--clean-urls, --spa, --keep N),\n"+
		"                                 the defaults of every publish to it\n"+
		"  dt site remove NAME            remove a site, its current pointer and the deploys only it keeps\n"+
		"  dt sites [--json]              list the sites")
	f.register(fs)
	fs.Var(&hosts, "host", hostUsage)
	if err := fs.parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return fs.usageErrorf("missing add, set or remove")
	}
	return fs.usageErrorf("unknown subcommand %q: want add, set or remove", fs.Arg(0))
}

const hostUsage = "serve the site on `HOST` (www.example.com, or *.example.com for one label more); repeatable"

// siteSettingFlags are the serving settings dt site add and dt site set write into a site's
// record, as dt publish's flags of the same names set them for one deploy.
type siteSettingFlags struct {
	clean, spa, force bool
	keep              int
}

func (p *siteSettingFlags) register(fs *flagSet) {
	fs.BoolVar(&p.clean, "clean-urls", false, "serve /about.html at /about in every publish to the site that does not say otherwise\n(--clean-urls=false: never)")
	fs.BoolVar(&p.spa, "spa", false, "serve /index.html for paths that match nothing in every publish to the site that does not say\notherwise (--spa=false: never)")
	fs.IntVar(&p.keep, "keep", 0, fmt.Sprintf("keep the newest `N` deploys of the site for rollback (1 to %d) when a publish does not say", site.MaxKeep))
	fs.BoolVar(&p.force, "force", false, "write settings even while live edges of an earlier release are heard: those edges\nrefuse the record until upgraded: they never serve a new site, and drop an existing one\nwhen they restart")
}

// settings returns the settings among p that were given on the command line.
func (p *siteSettingFlags) settings(fs *flagSet) (site.Settings, error) {
	var s site.Settings
	var err error
	fs.Visit(func(fl *flag.Flag) {
		switch fl.Name {
		case "clean-urls":
			s.CleanURLs = &p.clean
		case "spa":
			s.SPA = &p.spa
		case "keep":
			s.Keep = p.keep
			if p.keep < 1 || p.keep > site.MaxKeep {
				err = fs.usageErrorf("--keep: want 1 to %d", site.MaxKeep)
			}
		}
	})
	return s, err
}

// runSiteWrite runs dt site add and dt site set, which differ only in the function writing the
// record.
func runSiteWrite(ctx context.Context, name string, args []string, env *Env,
	write func(context.Context, string, publish.SiteSpec, publish.NetworkOptions) (site.Record, error)) error {
	var (
		f     siteFlags
		p     siteSettingFlags
		hosts stringList
	)
	fs := newFlagSet(env, name, "dt "+name+" NAME [--host HOST...] [--clean-urls] [--spa] [--keep N] --keys DIR --peer ADDR", siteAbout+"\n\n"+
		"dt site set changes only what it is given: --host replaces every host of the site, and each\n"+
		"setting replaces that setting. Settings are written only once every live edge reads them\n"+
		"(upgrade every node first, or --force).")
	f.register(fs)
	fs.Var(&hosts, "host", hostUsage)
	p.register(fs)
	if err := fs.parse(args); err != nil {
		return err
	}
	if err := fs.wantArgs(1, "NAME"); err != nil {
		return err
	}
	if err := site.CheckSiteName(fs.Arg(0)); err != nil {
		return fs.usageErrorf("%v", err)
	}
	settings, err := p.settings(fs)
	if err != nil {
		return err
	}
	spec := publish.SiteSpec{Hosts: hosts, SetHosts: hostsGiven(fs), Settings: settings, Force: p.force}
	var r site.Record
	err = f.call(ctx, env, fs, true, func(ctx context.Context, opts publish.NetworkOptions) (err error) {
		r, err = write(ctx, fs.Arg(0), spec, opts)
		return err
	})
	if err != nil {
		return err
	}
	if f.json {
		return json.NewEncoder(env.Stdout).Encode(r)
	}
	fmt.Fprintf(env.Stdout, "site %s: %s\n", r.Name, hostList(r.Hosts))
	if r.Settings != nil {
		fmt.Fprintf(env.Stdout, "settings: %s\n", r.Settings)
	}
	return nil
}

// hostsGiven reports whether --host was on the command line.
func hostsGiven(fs *flagSet) bool {
	given := false
	fs.Visit(func(fl *flag.Flag) { given = given || fl.Name == "host" })
	return given
}

func runSiteRemove(ctx context.Context, args []string, env *Env) error {
	var f siteFlags
	fs := newFlagSet(env, "site remove", "dt site remove NAME --keys DIR --peer ADDR",
		"Removes the site NAME: its record and its current pointer, so edges stop serving it and its\n"+
			"hosts are free; then collects the deploys no other site keeps, and the blobs no kept deploy\n"+
			"of any site names. Needs master.key in the keys directory.")
	f.register(fs)
	if err := fs.parse(args); err != nil {
		return err
	}
	if err := fs.wantArgs(1, "NAME"); err != nil {
		return err
	}
	if err := site.CheckSiteName(fs.Arg(0)); err != nil {
		return fs.usageErrorf("%v", err)
	}
	var collected []site.DeployID
	err := f.call(ctx, env, fs, true, func(ctx context.Context, opts publish.NetworkOptions) (err error) {
		collected, err = publish.RemoveSite(ctx, fs.Arg(0), opts)
		return err
	})
	if err != nil {
		return err
	}
	if f.json {
		return json.NewEncoder(env.Stdout).Encode(struct {
			Site      string          `json:"site"`
			Collected []site.DeployID `json:"collected"`
		}{fs.Arg(0), append([]site.DeployID{}, collected...)})
	}
	fmt.Fprintf(env.Stdout, "site %s removed; %d deploys collected\n", fs.Arg(0), len(collected))
	return nil
}

func runSites(ctx context.Context, args []string, env *Env) error {
	var f siteFlags
	fs := newFlagSet(env, "sites", "dt sites --keys DIR --peer ADDR [--json]",
		"Lists the sites of the network: name, current deploy, hosts, the live edges serving the\n"+
			"current deploy (by name, heard over one and a half heartbeat intervals) and how many live\n"+
			"edges lag on it, and its serving settings (dt site set). A network published to before it had sites lists its one site as\n"+
			"default (every host), with no record.")
	f.register(fs)
	if err := fs.parse(args); err != nil {
		return err
	}
	if err := fs.wantArgs(0, ""); err != nil {
		return err
	}
	var list []publish.SiteInfo
	err := f.call(ctx, env, fs, false, func(ctx context.Context, opts publish.NetworkOptions) (err error) {
		list, err = publish.Sites(ctx, opts)
		return err
	})
	if err != nil {
		return err
	}
	if f.json {
		return writeIndented(env.Stdout, list)
	}
	if len(list) == 0 {
		fmt.Fprintln(env.Stderr, "no sites yet: add one with `dt site add NAME --host HOST`, or publish with `dt publish`")
		return nil
	}
	printSites(env, list)
	return nil
}

func printSites(env *Env, list []publish.SiteInfo) {
	tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SITE\tCURRENT\tHOSTS\tSETTINGS\tLIVE ON\tLAGGING")
	for _, s := range list {
		cur, hosts, live := "-", hostList(s.Hosts), "-"
		if s.Current != nil {
			cur = s.Current.Short()
		}
		if s.Implicit {
			hosts = "(every host no other site claims)"
		}
		if len(s.LiveOn) > 0 {
			live = strings.Join(s.LiveOn, " ")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\n", s.Name, cur, hosts, s.Settings.String(), live, s.Lagging)
	}
	tw.Flush()
}

func hostList(hosts []string) string {
	if len(hosts) == 0 {
		return "(no hosts)"
	}
	return strings.Join(hosts, " ")
}
