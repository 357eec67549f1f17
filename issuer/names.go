package issuer

import (
	"context"
	"slices"
	"strings"

	"github.com/dt-cdn/dt/dns/zone"
	"github.com/dt-cdn/dt/netcert"
	"github.com/dt-cdn/dt/netconf"
	"github.com/dt-cdn/dt/site"
)

// Group is the names of one certificate: the CDN zone's wildcard and apex, or one site's
// hostnames. Names are sorted, so Names[0] names the certificate's record (netcert.Key).
type Group struct {
	// Site is the site the names are of; empty for the CDN zone's.
	Site  string
	Names []string
}

// Key returns the table key of the group's certificate record.
func (g Group) Key() string { return netcert.Key(g.Names[0]) }

// wanted is what the table asks for: the groups of names to hold certificates for, and the
// zones dt's DNS nodes serve (lower case, no trailing dot), which decide DNS-01 against HTTP-01.
type wanted struct {
	groups []Group
	zones  []string
}

// readWanted reads the network settings, the site records and the DNS zones from the table.
// A record that does not parse is skipped, as every node skips it.
func readWanted(ctx context.Context, t Table) wanted {
	var w wanted
	var cdn string
	if b, err := t.Get(ctx, netconf.Key); err == nil {
		if s, err := netconf.ParseSettings(b); err == nil && s.CDNZone != "" {
			cdn = s.CDNZone
			w.zones = append(w.zones, cdn)
			w.groups = append(w.groups, Group{Names: []string{"*." + cdn, cdn}})
		}
	}
	var keys []string
	for k := range t.ObjectKeys() {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, z := range zone.Zones(keys) {
		w.zones = append(w.zones, strings.TrimSuffix(strings.ToLower(z), "."))
	}
	for _, k := range keys {
		if _, ok := site.ParseRecordKey(k); !ok {
			continue
		}
		b, err := t.Get(ctx, k)
		if err != nil {
			continue
		}
		r, err := site.ParseRecordAt(k, b)
		if err != nil {
			continue
		}
		if g, ok := siteGroup(r, cdn, w.zones); ok {
			w.groups = append(w.groups, g)
		}
	}
	return w
}

// siteGroup returns the names of a site's certificate: its hosts, less those the CDN zone's
// wildcard or apex already covers, and less wildcards outside the zones dt's DNS serves
// (which only DNS-01 can validate). False when nothing is left.
func siteGroup(r site.Record, cdn string, zones []string) (Group, bool) {
	g := Group{Site: r.Name}
	for _, h := range r.Hosts {
		if cdn != "" && (h == cdn || parentOf(h) == cdn) {
			continue
		}
		if strings.HasPrefix(h, "*.") && !inZones(h, zones) {
			continue
		}
		g.Names = append(g.Names, h)
	}
	if len(g.Names) == 0 || len(g.Names) > netcert.MaxNames {
		return Group{}, false
	}
	slices.Sort(g.Names)
	return g, true
}

// parentOf returns the name without its first label.
func parentOf(name string) string {
	_, parent, _ := strings.Cut(name, ".")
	return parent
}

// inZones reports whether name ("*." included) lies in one of zones: DNS-01 is answered for it.
func inZones(name string, zones []string) bool {
	name = strings.TrimPrefix(name, "*.")
	for _, z := range zones {
		if name == z || strings.HasSuffix(name, "."+z) {
			return true
		}
	}
	return false
}
