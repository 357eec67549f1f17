package cli

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/dt-cdn/dt/dt"
	"github.com/dt-cdn/dt/netconf"
	"github.com/dt-cdn/dt/site"
)

// The network-wide settings: dt network set and dt network show, through a transient node.

const networkAbout = "Shows or changes what holds for the whole network: the CDN zone (the DNS zone delegated to\n" +
	"dt's DNS nodes, under which every edge, site and preview has a name), the masters' public\n" +
	"keys, the sites and the publisher keys granted."

func runNetwork(ctx context.Context, args []string, env *Env) error {
	if len(args) > 0 {
		switch args[0] {
		case "set":
			return runNetworkSet(ctx, args[1:], env)
		case "show":
			return runNetworkShow(ctx, args[1:], env)
		}
	}
	var f clientFlags
	fs := newFlagSet(env, "network", "dt network set|show --keys DIR --peer ADDR", networkAbout+"\n\n"+
		"  dt network set --cdn-zone NAME   set the CDN zone (a master's); --cdn-zone '' clears it\n"+
		"  dt network show [--json]         show every network-wide setting")
	f.register(fs)
	if err := fs.parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return fs.usageErrorf("missing set or show")
	}
	return fs.usageErrorf("unknown subcommand %q: want set or show", fs.Arg(0))
}

// optionalString is a string flag that remembers whether it was given, so that an empty value
// (clearing a setting) differs from no flag at all.
type optionalString struct {
	value string
	set   bool
}

func (o *optionalString) String() string { return o.value }
func (o *optionalString) Set(s string) error {
	o.value, o.set = s, true
	return nil
}

func runNetworkSet(ctx context.Context, args []string, env *Env) error {
	var (
		f    clientFlags
		zone optionalString
	)
	fs := newFlagSet(env, "network set", "dt network set --cdn-zone NAME --keys DIR --peer ADDR",
		"Changes the network-wide settings, keeping those not named. --cdn-zone sets the CDN zone\n"+
			"(cdn.example.com: delegate it to the DNS nodes with NS records at its parent), or clears it\n"+
			"with ''. Nodes of earlier releases ignore the setting. Needs master.key in the keys directory.")
	fs.Var(&zone, "cdn-zone", "the CDN zone `NAME` (at least two labels); '' clears it")
	f.register(fs)
	if err := f.parse(fs, args, 0, ""); err != nil {
		return err
	}
	if !zone.set {
		return fs.usageErrorf("nothing to set: give --cdn-zone")
	}
	z := netconf.NormalizeZone(zone.value)
	if z != "" {
		if err := netconf.CheckZone(z); err != nil {
			return fs.usageErrorf("--cdn-zone: %v", err)
		}
	}
	return withMaster(ctx, env, &f, func(ctx context.Context, t *transient) error {
		s, err := readSettings(ctx, t.n)
		if err != nil {
			return err
		}
		s.CDNZone = z
		body, err := s.Marshal()
		if err != nil {
			return err
		}
		if err := t.n.Put(ctx, netconf.Key, body); err != nil {
			return err
		}
		if err := t.n.WaitReplicated(ctx, netconf.Key, 1); err != nil {
			return fmt.Errorf("settings written but not confirmed by a peer: %w", err)
		}
		fmt.Fprintf(env.Stdout, "cdn zone: %s\n", orNone(s.CDNZone))
		return nil
	})
}

// readSettings waits until n has synced and returns the network's settings: the record's, or
// none (Version alone) when the table holds no record.
func readSettings(ctx context.Context, n *dt.Node) (netconf.Settings, error) {
	if err := n.WaitSynced(ctx); err != nil {
		return netconf.Settings{}, err
	}
	if !n.Has(netconf.Key) {
		return netconf.Settings{V: netconf.Version}, nil
	}
	raw, err := n.Get(ctx, netconf.Key)
	if err != nil {
		return netconf.Settings{}, fmt.Errorf("read %s: %w", netconf.Key, err)
	}
	return netconf.ParseSettings(raw)
}

// networkJSON is what dt network show --json prints.
type networkJSON struct {
	CDNZone string      `json:"cdn_zone"`
	Masters []string    `json:"masters"`
	Sites   int         `json:"sites"`
	Grants  []grantJSON `json:"grants"`
}

func runNetworkShow(ctx context.Context, args []string, env *Env) error {
	var (
		f      clientFlags
		asJSON bool
	)
	fs := newFlagSet(env, "network show", "dt network show --keys DIR --peer ADDR [--json]",
		"Shows every network-wide setting: the CDN zone, the masters' public keys (from master.pub in\n"+
			"the keys directory: every node trusts the keys its own master.pub lists), how many sites the\n"+
			"network has (dt sites lists them) and the publisher keys granted (dt grants).")
	fs.BoolVar(&asJSON, "json", false, "print a JSON object")
	f.register(fs)
	if err := f.parse(fs, args, 0, ""); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	t, ctx, err := openTransient(ctx, env, &f, false)
	if err != nil {
		return err
	}
	defer t.close()
	out, err := showNetwork(ctx, t, f.keys)
	if err != nil {
		return t.explain(ctx, err)
	}
	if asJSON {
		return writeIndented(env.Stdout, out)
	}
	printNetwork(env.Stdout, out)
	return t.close()
}

// showNetwork gathers the settings from t's synced table and the masters from the keys in dir.
func showNetwork(ctx context.Context, t *transient, dir string) (networkJSON, error) {
	s, err := readSettings(ctx, t.n)
	if err != nil {
		return networkJSON{}, err
	}
	keys, kerr := dt.LoadKeys(dir)
	if kerr != nil {
		return networkJSON{}, kerr
	}
	out := networkJSON{CDNZone: s.CDNZone, Masters: []string{}, Grants: []grantJSON{}}
	for _, m := range keys.Masters {
		out.Masters = append(out.Masters, hex.EncodeToString(m))
	}
	var records []site.Record
	for key := range t.n.ObjectKeys() {
		if name, ok := site.ParseRecordKey(key); ok {
			records = append(records, site.Record{Name: name})
		}
	}
	out.Sites = len(records)
	if site.ImplicitDefault(records, t.n.Has(site.CurrentKey)) {
		out.Sites++
	}
	grants := t.n.Grants()
	slices.SortFunc(grants, func(a, b dt.Grant) int { return bytes.Compare(a.Key, b.Key) })
	for _, g := range grants {
		out.Grants = append(out.Grants, grantOut(g))
	}
	return out, nil
}

func printNetwork(w io.Writer, n networkJSON) {
	fmt.Fprintf(w, "cdn zone: %s\n", orNone(n.CDNZone))
	fmt.Fprintf(w, "masters:  %s\n", strings.Join(n.Masters, " "))
	fmt.Fprintf(w, "sites:    %d\n", n.Sites)
	fmt.Fprintf(w, "grants:   %d\n", len(n.Grants))
	for _, g := range n.Grants {
		fmt.Fprintf(w, "  %s\n", g.Key)
	}
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
