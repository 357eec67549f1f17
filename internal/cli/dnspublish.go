package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/miekg/dns"

	"github.com/dt-cdn/dt/dns/zone"
	"github.com/dt-cdn/dt/dt"
)

// dnsPublishFlags are dt dns-publish's flags.
type dnsPublishFlags struct {
	client clientFlags
	origin string
	dryRun bool
	remove string
	cache  string
}

func (f *dnsPublishFlags) register(fs *flagSet) {
	f.client.register(fs)
	fs.StringVar(&f.origin, "origin", "", "the zone's `NAME`, for relative names before any $ORIGIN (default: the file's $ORIGIN)")
	fs.BoolVar(&f.dryRun, "dry-run", false, "print what would change; write nothing")
	fs.StringVar(&f.remove, "remove-zone", "", "remove the zone `NAME` and every record in it, instead of publishing a file")
	fs.StringVar(&f.cache, "cache-dir", defaultCacheDir(), "keep a copy of the table (records, no file data) in `DIR` between runs, shared with dt publish; empty: none")
}

func runDNSPublish(ctx context.Context, args []string, env *Env) error {
	var f dnsPublishFlags
	fs := newFlagSet(env, "dns-publish", "dt dns-publish --keys DIR --peer ADDR [--origin NAME] [--dry-run] [--timeout 30s] ZONEFILE\n"+
		"       dt dns-publish --keys DIR --peer ADDR --remove-zone NAME [--dry-run]",
		"Publishes a zone to every DNS node of the network: it reads ZONEFILE (standard zone-file\n"+
			"syntax; the SOA's owner is the zone) and validates it before anything is sent, then, as a\n"+
			"transient master, writes the RRsets that are new or changed, removes those gone from the\n"+
			"file, writes the SOA last, and waits until a peer holds it all. Republishing an unchanged\n"+
			"file writes nothing. --remove-zone takes a whole zone off every DNS node instead (its SOA\n"+
			"first, so nodes stop answering for it at once). Needs master.key in the keys directory.")
	f.register(fs)
	if err := fs.parse(args); err != nil {
		return err
	}
	if f.remove != "" {
		if err := fs.wantArgs(0, ""); err != nil {
			return err
		}
		apex := zone.CanonicalName(f.remove)
		if apex == "" {
			return fs.usageErrorf("--remove-zone %q is not a domain name", f.remove)
		}
		if err := f.client.check(fs); err != nil {
			return err
		}
		return removeZone(ctx, env, &f, apex)
	}
	if err := fs.wantArgs(1, "ZONEFILE"); err != nil {
		return err
	}
	if err := f.client.check(fs); err != nil {
		return err
	}
	// Validate before touching keys or the network.
	z, err := readZone(fs.Arg(0), f.origin)
	if err != nil {
		return err
	}
	return publishZone(ctx, env, &f, z)
}

// readZone reads and validates a zone file.
func readZone(path, origin string) (*zone.Zone, error) {
	file, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read zone: %w", err)
	}
	defer file.Close()
	return zone.Parse(file, path, zone.Options{Origin: origin})
}

// publishZone writes what differs between z and the table, or with --dry-run prints it.
func publishZone(ctx context.Context, env *Env, f *dnsPublishFlags, z *zone.Zone) error {
	ctx, cancel := context.WithTimeout(ctx, f.client.timeout)
	defer cancel()
	t, ctx, err := openTransientWith(ctx, env, &f.client, transientOptions{master: true, lazy: true, cacheDir: f.cache})
	if err != nil {
		return err
	}
	defer t.close()
	if err := t.n.WaitSynced(ctx); err != nil {
		return t.explain(ctx, err)
	}
	have, err := zone.Held(ctx, t.n, z.Apex)
	if err != nil {
		return t.explain(ctx, err)
	}
	changes, err := zone.Diff(z, have)
	if err != nil {
		return err
	}
	if f.dryRun {
		printZoneChanges(env.Stdout, z, have, changes)
		return nil
	}
	if !changes.Empty() && !changes.ChangesSOA() {
		fmt.Fprintf(env.Stderr, "dt dns-publish: warning: %s changes but its SOA serial %d does not; secondaries outside dt would not notice\n", z.Apex, z.Serial())
	}
	if err := zone.Write(ctx, t.n, changes); err != nil {
		return t.explain(ctx, err)
	}
	if err := t.close(); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "%s: %d RRsets written, %d removed, %d unchanged (serial %d)\n", z.Apex, len(changes.Put), len(changes.Delete), changes.Unchanged, z.Serial())
	return nil
}

// printZoneChanges prints what a publish of z would write, for --dry-run.
func printZoneChanges(w io.Writer, z *zone.Zone, have map[string][]byte, changes zone.Changes) {
	for _, s := range changes.Put {
		verb := "add"
		if _, ok := have[s.Key()]; ok {
			verb = "change"
		}
		fmt.Fprintf(w, "%s %s %s (%d records)\n", verb, s.Name, dns.TypeToString[s.Type], len(s.Data))
	}
	for _, k := range changes.Delete {
		fmt.Fprintf(w, "remove %s\n", strings.TrimPrefix(k, zone.ZonePrefix(z.Apex)))
	}
	fmt.Fprintf(w, "%s: %d RRsets to write, %d to remove, %d unchanged (dry run: nothing sent)\n", z.Apex, len(changes.Put), len(changes.Delete), changes.Unchanged)
}

// removeZone takes the zone apex off the network (zone.Remove), or with --dry-run prints what
// that would remove.
func removeZone(ctx context.Context, env *Env, f *dnsPublishFlags, apex string) error {
	ctx, cancel := context.WithTimeout(ctx, f.client.timeout)
	defer cancel()
	t, ctx, err := openTransientWith(ctx, env, &f.client, transientOptions{master: true, lazy: true, cacheDir: f.cache})
	if err != nil {
		return err
	}
	defer t.close()
	if err := t.n.WaitSynced(ctx); err != nil {
		return t.explain(ctx, err)
	}
	keys := zone.Removal(slices.Collect(t.n.ObjectKeys()), apex)
	if len(keys) == 0 {
		return fmt.Errorf("no zone %s in the table", apex)
	}
	if f.dryRun {
		for _, k := range keys {
			fmt.Fprintf(env.Stdout, "remove %s\n", strings.TrimPrefix(k, zone.ZonePrefix(apex)))
		}
		fmt.Fprintf(env.Stdout, "%s: %d RRsets to remove (dry run: nothing sent)\n", apex, len(keys))
		return nil
	}
	if err := zone.Remove(ctx, t.n, keys, apex); err != nil {
		return t.explain(ctx, err)
	}
	if err := t.close(); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "%s: %d RRsets removed\n", apex, len(keys))
	return nil
}

func runDNSRecords(ctx context.Context, args []string, env *Env) error {
	var (
		f     clientFlags
		which string
	)
	fs := newFlagSet(env, "dns-records", "dt dns-records --keys DIR --peer ADDR [--zone NAME] [--timeout 30s]",
		"Lists the DNS records the network's table holds, zone by zone, in zone-file syntax (as\n"+
			"every DNS node serves them), through a transient plain node.")
	f.register(fs)
	fs.StringVar(&which, "zone", "", "list only the zone `NAME`")
	if err := f.parse(fs, args, 0, ""); err != nil {
		return err
	}
	if which != "" {
		if which = zone.CanonicalName(which); which == "" {
			return fs.usageErrorf("--zone is not a domain name")
		}
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	t, ctx, err := openTransientWith(ctx, env, &f, transientOptions{lazy: true})
	if err != nil {
		return err
	}
	defer t.close()
	if err := t.n.WaitSynced(ctx); err != nil {
		return t.explain(ctx, err)
	}
	zones := zone.Zones(slices.Collect(t.n.ObjectKeys()))
	if which != "" {
		zones = slices.DeleteFunc(zones, func(z string) bool { return z != which })
		if len(zones) == 0 {
			return fmt.Errorf("zone %s: %w", which, dt.ErrNotFound)
		}
	}
	for i, apex := range zones {
		have, err := zone.Held(ctx, t.n, apex)
		if err != nil {
			return t.explain(ctx, err)
		}
		if i > 0 {
			fmt.Fprintln(env.Stdout)
		}
		printZone(env, apex, have)
	}
	return nil
}

// printZone prints a zone's records in zone-file syntax, and on stderr the RRsets it cannot.
func printZone(env *Env, apex string, have map[string][]byte) {
	sets, bad := zone.Listing(have)
	for _, err := range bad {
		fmt.Fprintf(env.Stderr, "dt dns-records: %v\n", err)
	}
	fmt.Fprintf(env.Stdout, "; zone %s: %d RRsets\n", apex, len(sets))
	for _, rrs := range sets {
		for _, rr := range rrs {
			fmt.Fprintln(env.Stdout, rr.String())
		}
	}
}
