package web

import (
	"cmp"
	"net/url"
	"time"

	"github.com/dt-cdn/dt/edgeset"
	"github.com/dt-cdn/dt/heartbeat"
)

// Snapshot is everything the page shows at one moment: the body of /api/snapshot and of every
// live event. Field names are part of the page's contract with its script.
type Snapshot struct {
	// Time is when the snapshot was taken, by the redirector's clock.
	Time time.Time `json:"time"`
	// Redirector is the node the dashboard runs on.
	Redirector RedirectorInfo `json:"redirector"`
	// CurrentDeploy is the id of the deploy the network serves ("" before the first publish).
	CurrentDeploy string `json:"current_deploy"`
	// Edges are every edge the redirector tracks, sorted by node id.
	Edges []Edge `json:"edges"`
	// Deploys are the deploys the network keeps, newest first.
	Deploys []Deploy `json:"deploys"`
	// Sites are the network's sites, sorted by name: a network built before sites has the one
	// site "default" (Implicit), whose current deploy is CurrentDeploy.
	Sites []Site `json:"sites"`
	// Certs are the network's certificates (the table's, then names edges hold certificates of
	// their own for), each with the edges serving it.
	Certs []Cert `json:"certs"`
	// Issuer is the issuer's lease (Down: it has expired, nothing is renewed); nil when the
	// table holds no lease record (a network without an issuer).
	Issuer *IssuerState `json:"issuer,omitempty"`
}

// Site is one site of the network.
type Site struct {
	Name string `json:"name"`
	// Hosts are the hosts it claims; Implicit says it is the site "default" without a record of
	// its own, which claims every host no other site claims.
	Hosts    []string `json:"hosts"`
	Implicit bool     `json:"implicit,omitempty"`
	// CurrentDeploy is its current deploy ("" before its first publish).
	CurrentDeploy string `json:"current_deploy"`
	// Serving are the node ids of the edges the redirector sends its visitors to.
	Serving []string `json:"serving"`
	// History are the deploys its current pointer has named, newest first, of those the
	// network keeps (empty without a deploy history).
	History []string `json:"history"`
}

// RedirectorInfo describes the redirector's own node.
type RedirectorInfo struct {
	Node    string `json:"node"`
	Peers   int    `json:"peers"`
	Synced  bool   `json:"synced"`
	Objects int    `json:"objects"`
}

// Edge is one row of the page: an edge as the redirector sees it.
type Edge struct {
	Node string `json:"node"` // the node id, from the signed heartbeat
	Name string `json:"name"` // the edge's name (dt edge --name), else the host of URL
	URL  string `json:"url"`  // where visitors reach it

	State  string    `json:"state"`            // alive, suspect or dead
	Reason string    `json:"reason,omitempty"` // why it is suspect or dead
	Since  time.Time `json:"since"`            // when it entered State
	// Eligible says the redirector would send visitors here; Excluded says why not.
	Eligible bool   `json:"eligible"`
	Excluded string `json:"excluded,omitempty"`

	Location *heartbeat.Location `json:"location,omitempty"`
	Map      *MapPoint           `json:"map,omitempty"` // Location on the page's map

	Deploy  string `json:"deploy,omitempty"` // the deploy it serves
	Current bool   `json:"current"`          // Deploy is the network's current deploy
	Synced  bool   `json:"synced"`           // it holds every blob of the current deploy
	// Sites is how many sites it knows, Lagging those whose current deploy it does not serve
	// yet (LaggingMore more than listed), and SitesDigest a digest of what it serves, equal on
	// two edges that serve the same. All zero for an edge of a release before sites.
	Sites       int      `json:"sites,omitempty"`
	Lagging     []string `json:"lagging,omitempty"`
	LaggingMore int      `json:"lagging_more,omitempty"`
	SitesDigest string   `json:"sites_digest,omitempty"`

	Load           heartbeat.Load `json:"load"`
	HeartbeatAgeMS int64          `json:"heartbeat_age_ms"`
	// CertExpiry is when its certificate expires; zero (absent) for plain HTTP.
	CertExpiry time.Time `json:"cert_expiry,omitzero"`
	Draining   bool      `json:"draining"`
	Version    string    `json:"version,omitempty"`
	Objects    int64     `json:"objects"`
	Bytes      int64     `json:"bytes"`
	DiskFree   uint64    `json:"disk_free"`
}

// Deploy is one deploy of the history.
type Deploy struct {
	ID string `json:"id"`
	// Read says the manifest was read; until then Created, Files and Bytes are zero.
	Read    bool      `json:"read"`
	Created time.Time `json:"created,omitzero"`
	Files   int       `json:"files"`
	Bytes   int64     `json:"bytes"` // the files' sizes, uncompressed
	Current bool      `json:"current"`
}

// snapshot builds a Snapshot from the redirector's status and the deploy history.
func snapshot(now time.Time, st edgeset.Status, deploys []Deploy, history map[string][]string) Snapshot {
	s := Snapshot{
		Time:          now,
		CurrentDeploy: st.Current,
		Redirector: RedirectorInfo{Node: st.Node.NodeID.String(), Peers: st.Node.Peers,
			Synced: st.Node.Synced, Objects: st.Node.Objects},
		Edges:   make([]Edge, 0, len(st.Edges)),
		Deploys: make([]Deploy, 0, len(deploys)),
		Sites:   make([]Site, 0, len(st.Sites)),
		Certs:   []Cert{},
	}
	for _, ss := range st.Sites {
		hist := history[ss.Name]
		if hist == nil {
			hist = []string{}
		}
		s.Sites = append(s.Sites, Site{Name: ss.Name, Hosts: ss.Hosts, Implicit: ss.Implicit, CurrentDeploy: ss.Current,
			Serving: ss.Serving, History: hist})
	}
	for _, e := range st.Edges {
		s.Edges = append(s.Edges, edgeRow(e, st.Current))
	}
	for _, d := range deploys {
		d.Current = d.ID == st.Current && st.Current != ""
		s.Deploys = append(s.Deploys, d)
	}
	return s
}

func edgeRow(e edgeset.EdgeStatus, current string) Edge {
	h := e.Last
	row := Edge{
		Node: e.Node, Name: cmp.Or(h.Name, hostOf(h.PublicURL)), URL: h.PublicURL,
		State: e.State.String(), Reason: e.Reason, Since: e.Since,
		Eligible: e.Eligible, Excluded: e.Excluded,
		Location: h.Location, Map: project(h.Location),
		Deploy: h.Deploy, Current: h.Deploy != "" && h.Deploy == current, Synced: h.Synced,
		Load: h.Load, HeartbeatAgeMS: e.AgeMS,
		Draining: h.Draining, Version: h.Version,
		Objects: h.Objects, Bytes: h.Bytes, DiskFree: h.DiskFree,
	}
	if h.CertExpiry != 0 {
		row.CertExpiry = time.UnixMilli(h.CertExpiry).UTC()
	}
	if r := e.Sites; r != nil {
		row.Sites, row.LaggingMore, row.SitesDigest = r.Sites, r.LaggingMore, r.Digest
		for _, l := range r.Lagging {
			row.Lagging = append(row.Lagging, l.Site)
		}
	}
	return row
}

// hostOf returns the host (and port) of a URL, or the URL itself when it has none.
func hostOf(u string) string {
	p, err := url.Parse(u)
	if err != nil || p.Host == "" {
		return u
	}
	return p.Host
}
