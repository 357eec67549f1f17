package cli

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/miekg/dns"

	"github.com/dt-cdn/dt/dns/zone"
	"github.com/dt-cdn/dt/dt"
)

func runDNSPublish(ctx context.Context, args []string, env *Env) error {
	var (
		f      clientFlags
		origin string
		dryRun bool
		remove string
		cache  string
	)
	fs := newFlagSet(env, "dns-publish", "dt dns-publish --keys DIR --peer ADDR [--origin NAME] [--dry-run] [--timeout 30s] ZONEFILE\n"+
		"       dt dns-publish --keys DIR --peer ADDR --remove-zone NAME [--dry-run]",
		"Publishes a zone to every DNS node of the network: it reads ZONEFILE (standard zone-file\n"+
			"syntax; the SOA's owner is the zone) and validates it before anything is sent, then, as a\n"+
			"transient master, writes the RRsets that are new or changed, removes those gone from the\n"+
			"file, writes the SOA last, and waits until a peer holds it all. Republishing an unchanged\n"+
			"file writes nothing. --remove-zone takes a whole zone off every DNS node instead (its SOA\n"+
			"first, so nodes stop answering for it at once). Needs master.key in the keys directory.")
	f.register(fs)
	fs.StringVar(&origin, "origin", "", "the zone's `NAME`, for relative names before any $ORIGIN (default: the file's $ORIGIN)")
	fs.BoolVar(&dryRun, "dry-run", false, "print what would change; write nothing")
	fs.StringVar(&remove, "remove-zone", "", "remove the zone `NAME` and every record in it, instead of publishing a file")
	fs.StringVar(&cache, "cache-dir", defaultCacheDir(), "keep a copy of the table (records, no file data) in `DIR` between runs, shared with dt publish; empty: none")
	if err := fs.parse(args); err != nil {
		return err
	}
	if remove != "" {
		if err := fs.wantArgs(0, ""); err != nil {
			return err
		}
		apex := zone.CanonicalName(remove)
		if apex == "" {
			return fs.usageErrorf("--remove-zone %q is not a domain name", remove)
		}
		if err := f.check(fs); err != nil {
			return err
		}
		return removeZone(ctx, env, &f, apex, dryRun, cache)
	}
	if err := fs.wantArgs(1, "ZONEFILE"); err != nil {
		return err
	}
	if err := f.check(fs); err != nil {
		return err
	}
	// Validate before touching keys or the network.
	file, err := os.Open(fs.Arg(0))
	if err != nil {
		return fmt.Errorf("read zone: %w", err)
	}
	z, err := zone.Parse(file, fs.Arg(0), zone.Options{Origin: origin})
	file.Close()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	t, ctx, err := openTransientWith(ctx, env, &f, transientOptions{master: true, lazy: true, cacheDir: cache})
	if err != nil {
		return err
	}
	defer t.close()
	if err := t.n.WaitSynced(ctx); err != nil {
		return t.explain(ctx, err)
	}
	have, err := tableSets(ctx, t.n, zone.ZonePrefix(z.Apex))
	if err != nil {
		return t.explain(ctx, err)
	}
	changes, err := zone.Diff(z, have)
	if err != nil {
		return err
	}
	if dryRun {
		for _, s := range changes.Put {
			verb := "add"
			if _, ok := have[s.Key()]; ok {
				verb = "change"
			}
			fmt.Fprintf(env.Stdout, "%s %s %s (%d records)\n", verb, s.Name, dns.TypeToString[s.Type], len(s.Data))
		}
		for _, k := range changes.Delete {
			fmt.Fprintf(env.Stdout, "remove %s\n", strings.TrimPrefix(k, zone.ZonePrefix(z.Apex)))
		}
		fmt.Fprintf(env.Stdout, "%s: %d RRsets to write, %d to remove, %d unchanged (dry run: nothing sent)\n", z.Apex, len(changes.Put), len(changes.Delete), changes.Unchanged)
		return nil
	}
	if !changes.Empty() && !slices.ContainsFunc(changes.Put, func(s zone.Set) bool { return s.Type == dns.TypeSOA }) {
		fmt.Fprintf(env.Stderr, "dt dns-publish: warning: %s changes but its SOA serial %d does not; secondaries outside dt would not notice\n", z.Apex, z.Serial())
	}
	if err := writeZone(ctx, t.n, changes); err != nil {
		return t.explain(ctx, err)
	}
	if err := t.close(); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "%s: %d RRsets written, %d removed, %d unchanged (serial %d)\n", z.Apex, len(changes.Put), len(changes.Delete), changes.Unchanged, z.Serial())
	return nil
}

// removeZone deletes every RRset of the zone apex, its SOA first: DNS nodes serve a zone only while
// its apex has a SOA, so they stop answering for it with the first removal they apply.
func removeZone(ctx context.Context, env *Env, f *clientFlags, apex string, dryRun bool, cache string) error {
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	t, ctx, err := openTransientWith(ctx, env, f, transientOptions{master: true, lazy: true, cacheDir: cache})
	if err != nil {
		return err
	}
	defer t.close()
	if err := t.n.WaitSynced(ctx); err != nil {
		return t.explain(ctx, err)
	}
	prefix := zone.ZonePrefix(apex)
	var keys []string
	for k := range t.n.ObjectKeys() {
		if strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return fmt.Errorf("no zone %s in the table", apex)
	}
	soa := (&zone.Set{Zone: apex, Name: apex, Type: dns.TypeSOA}).Key()
	slices.SortStableFunc(keys, func(a, b string) int {
		switch {
		case a == soa:
			return -1
		case b == soa:
			return 1
		}
		return strings.Compare(a, b)
	})
	if dryRun {
		for _, k := range keys {
			fmt.Fprintf(env.Stdout, "remove %s\n", strings.TrimPrefix(k, prefix))
		}
		fmt.Fprintf(env.Stdout, "%s: %d RRsets to remove (dry run: nothing sent)\n", apex, len(keys))
		return nil
	}
	rest := keys
	if keys[0] == soa {
		if err := t.n.Delete(ctx, soa); err != nil {
			return t.explain(ctx, fmt.Errorf("remove the SOA: %w", err))
		}
		rest = keys[1:]
	}
	if len(rest) > 0 {
		if err := t.n.DeleteMany(ctx, rest); err != nil {
			return t.explain(ctx, fmt.Errorf("remove RRsets: %w", err))
		}
	}
	if err := t.n.WaitReplicated(ctx, keys[len(keys)-1], 1); err != nil {
		return t.explain(ctx, fmt.Errorf("zone removed but not confirmed by a peer: %w", err))
	}
	if err := t.close(); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "%s: %d RRsets removed\n", apex, len(keys))
	return nil
}

// writeZone writes the changes in the order that keeps a zone whole as long as possible on the
// nodes that follow the log: the new and changed sets, then the removals, then the SOA; and waits
// until a peer holds the last of them (a peer's acknowledgement covers the log before it).
func writeZone(ctx context.Context, n *dt.Node, c zone.Changes) error {
	if c.Empty() {
		return nil
	}
	var (
		keys   []string
		bodies [][]byte
		soa    = -1
	)
	for i, s := range c.Put {
		if s.Type == dns.TypeSOA {
			soa = i
			continue
		}
		keys, bodies = append(keys, s.Key()), append(bodies, c.PutBodies[i])
	}
	last := ""
	if len(keys) > 0 {
		if err := n.PutMany(ctx, keys, bodies); err != nil {
			return fmt.Errorf("write RRsets: %w", err)
		}
		last = keys[len(keys)-1]
	}
	if len(c.Delete) > 0 {
		if err := n.DeleteMany(ctx, c.Delete); err != nil {
			return fmt.Errorf("remove RRsets: %w", err)
		}
		last = c.Delete[len(c.Delete)-1]
	}
	if soa >= 0 {
		if err := n.Put(ctx, c.Put[soa].Key(), c.PutBodies[soa]); err != nil {
			return fmt.Errorf("write the SOA: %w", err)
		}
		last = c.Put[soa].Key()
	}
	if err := n.WaitReplicated(ctx, last, 1); err != nil {
		return fmt.Errorf("zone written but not confirmed by a peer: %w", err)
	}
	return nil
}

// tableSets returns the bodies of the table's keys under prefix.
func tableSets(ctx context.Context, n *dt.Node, prefix string) (map[string][]byte, error) {
	have := map[string][]byte{}
	for k := range n.ObjectKeys() {
		if !strings.HasPrefix(k, prefix) {
			continue
		}
		body, err := n.Get(ctx, k)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", k, err)
		}
		have[k] = body
	}
	return have, nil
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
	keys := slices.Collect(t.n.ObjectKeys())
	zones := zone.Zones(keys)
	if which != "" {
		zones = slices.DeleteFunc(zones, func(z string) bool { return z != which })
		if len(zones) == 0 {
			return fmt.Errorf("zone %s: %w", which, dt.ErrNotFound)
		}
	}
	for i, apex := range zones {
		have, err := tableSets(ctx, t.n, zone.ZonePrefix(apex))
		if err != nil {
			return t.explain(ctx, err)
		}
		var sets []*zone.Set
		var rrs [][]dns.RR
		for k, body := range have {
			s, r, err := zone.DecodeSet(k, body)
			if err != nil {
				fmt.Fprintf(env.Stderr, "dt dns-records: %v\n", err)
				continue
			}
			sets, rrs = append(sets, s), append(rrs, r)
		}
		order := make([]int, len(sets))
		for j := range order {
			order[j] = j
		}
		// The SOA first, as in a zone file, then the names from the apex down.
		slices.SortFunc(order, func(a, b int) int {
			sa, sb := sets[a], sets[b]
			if (sa.Type == dns.TypeSOA) != (sb.Type == dns.TypeSOA) {
				if sa.Type == dns.TypeSOA {
					return -1
				}
				return 1
			}
			if c := zone.CompareNames(sa.Name, sb.Name); c != 0 {
				return c
			}
			return int(sa.Type) - int(sb.Type)
		})
		if i > 0 {
			fmt.Fprintln(env.Stdout)
		}
		fmt.Fprintf(env.Stdout, "; zone %s: %d RRsets\n", apex, len(sets))
		for _, j := range order {
			for _, rr := range rrs[j] {
				fmt.Fprintln(env.Stdout, rr.String())
			}
		}
	}
	return nil
}
