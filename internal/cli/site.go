package cli

import (
	"context"
	"encoding/json"
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
			return runSiteWrite(ctx, "site add", args[1:], env, publish.AddSite)
		case "set":
			return runSiteWrite(ctx, "site set", args[1:], env, publish.SetSite)
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

// runSiteWrite runs dt site add and dt site set, which differ only in the function writing the
// record.
func runSiteWrite(ctx context.Context, name string, args []string, env *Env,
	write func(context.Context, string, []string, publish.NetworkOptions) (site.Record, error)) error {
	var (
		f     siteFlags
		hosts stringList
	)
	fs := newFlagSet(env, name, "dt "+name+" NAME --host HOST [--host HOST...] --keys DIR --peer ADDR", siteAbout)
	f.register(fs)
	fs.Var(&hosts, "host", hostUsage)
	if err := fs.parse(args); err != nil {
		return err
	}
	if err := fs.wantArgs(1, "NAME"); err != nil {
		return err
	}
	if err := site.CheckSiteName(fs.Arg(0)); err != nil {
		return fs.usageErrorf("%v", err)
	}
	var r site.Record
	err := f.call(ctx, env, fs, true, func(ctx context.Context, opts publish.NetworkOptions) (err error) {
		r, err = write(ctx, fs.Arg(0), hosts, opts)
		return err
	})
	if err != nil {
		return err
	}
	if f.json {
		return json.NewEncoder(env.Stdout).Encode(r)
	}
	fmt.Fprintf(env.Stdout, "site %s: %s\n", r.Name, hostList(r.Hosts))
	return nil
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
			"edges lag on it. A network published to before it had sites lists its one site as\n"+
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
	fmt.Fprintln(tw, "SITE\tCURRENT\tHOSTS\tLIVE ON\tLAGGING")
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
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\n", s.Name, cur, hosts, live, s.Lagging)
	}
	tw.Flush()
}

func hostList(hosts []string) string {
	if len(hosts) == 0 {
		return "(no hosts)"
	}
	return strings.Join(hosts, " ")
}
