package static

import (
	"net/http"
	"slices"

	"github.com/dt-cdn/dt/site"
)

// Sites is what a Handler serves for a network of many sites: the host table that picks a site
// by the request's Host (and TLS server name), and the deploy each site serves. It is immutable
// and safe for concurrent use; a change is a new Sites swapped in with Handler.SetSites.
type Sites struct {
	hosts *site.Hosts
	sites []*Site // by the site's index in hosts.Names(); nil: no deploy yet
}

// NewSites returns the Sites of the host table hosts, with the deploys of sites (by name).
// Entries of sites the table does not name are never served.
func NewSites(hosts *site.Hosts, sites map[string]*Site) *Sites {
	ss := &Sites{hosts: hosts, sites: make([]*Site, len(hosts.Names()))}
	for i, name := range hosts.Names() {
		ss.sites[i] = sites[name]
	}
	return ss
}

// Hosts returns the host table.
func (ss *Sites) Hosts() *site.Hosts { return ss.hosts }

// Site returns the deploy the named site serves, or nil.
func (ss *Sites) Site(name string) *Site {
	if i, ok := slices.BinarySearch(ss.hosts.Names(), name); ok {
		return ss.sites[i]
	}
	return nil
}

// Pick returns the site that answers r: the site of its Host (":authority" over HTTP/2), which
// must also be the site of its TLS server name when it came over TLS with one. claimed is false
// when no site claims the Host, or the server name belongs to another site (or to none): a
// client that reuses a connection for another site's name (RFC 9113 §9.1.1) must ask again on
// a connection of its own, so 421 Misdirected Request (RFC 9110 §15.5.20). s is nil for a site
// that serves no deploy yet.
func (ss *Sites) Pick(r *http.Request) (name string, s *Site, claimed bool) {
	i, claimed := ss.hosts.Lookup(r.Host)
	if !claimed {
		return "", nil, false
	}
	if r.TLS != nil && r.TLS.ServerName != "" {
		if sni, ok := ss.hosts.Lookup(r.TLS.ServerName); !ok || sni != i {
			return "", nil, false
		}
	}
	return ss.hosts.Names()[i], ss.sites[i], true
}
