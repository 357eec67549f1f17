package dns

import (
	"encoding/json"
	"net/http"

	"github.com/dt-cdn/dt/edgeset"
)

// Status is the body of GET /dns.
type Status struct {
	// Addr is the address DNS is answered on, a port 0 resolved.
	Addr string `json:"addr"`
	// Zones and RRsets count what the node answers for.
	Zones  int `json:"zones"`
	RRsets int `json:"rrsets"`
	// GeoName is the GeoDNS name, canonical; empty without GeoDNS.
	GeoName string `json:"geo_name,omitempty"`
	// Edges are the edges as GeoDNS sees them, and Deploy the current deploy; empty without
	// GeoDNS and without a CDN zone.
	Edges  []edgeset.EdgeStatus `json:"edges,omitempty"`
	Deploy string               `json:"current_deploy,omitempty"`
	// CDNZone is the CDN zone the node answers (package dns/synth); empty for none. EdgeLabels
	// gives each edge's label under it (by node id), and SharedLabels the heartbeat names more
	// than one edge has, which name none of them (each answers to its derived label instead).
	CDNZone      string              `json:"cdn_zone,omitempty"`
	EdgeLabels   map[string]string   `json:"edge_labels,omitempty"`
	SharedLabels map[string][]string `json:"shared_labels,omitempty"`
}

func (p *parts) status() Status {
	st := Status{Addr: p.addr, GeoName: p.geoName}
	st.Zones, st.RRsets = p.store.Counts()
	st.CDNZone = p.synth.Zone()
	if p.geoName != "" || st.CDNZone != "" {
		rs := p.edges.Status()
		st.Edges, st.Deploy = rs.Edges, rs.Current
	}
	if st.CDNZone != "" {
		v := p.edges.View()
		labels := p.synth.Labels(v)
		st.EdgeLabels = map[string]string{}
		for _, e := range v.Edges {
			st.EdgeLabels[e.Node], _ = labels.Label(e.Node)
		}
		if shared := labels.Shared(); len(shared) > 0 {
			st.SharedLabels = shared
		}
	}
	return st
}

// Status reports what the running node answers for; ok is false when it does not run (yet).
func (d *Node) Status() (st Status, ok bool) {
	d.mu.Lock()
	p := d.running
	d.mu.Unlock()
	if p == nil {
		return Status{}, false
	}
	return p.status(), true
}

// serveStatus is GET /dns: Status as JSON, 503 until the node serves.
func (d *Node) serveStatus(w http.ResponseWriter, r *http.Request) {
	st, ok := d.Status()
	if !ok {
		http.Error(w, "starting", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(st) // a write error means the client left
}

// setRunning publishes the running node's parts to Status (nil once it stops).
func (d *Node) setRunning(p *parts) {
	d.mu.Lock()
	d.running = p
	d.mu.Unlock()
}
