package redirector

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"time"
)

// maxExplainIPLen bounds the ip parameter: the longest IPv6 text with a zone is far shorter.
const maxExplainIPLen = 100

// Explain returns the handler of the explain endpoint, meant for an admin listener (the public
// one redirects every path). GET ?ip=ADDR answers, as JSON, what a visitor from ADDR would get:
// the client's address and GeoIP record, the basis of the choice, the edge chosen by one draw,
// every eligible edge with its match, distance, weight and chance of being chosen (score), and
// every other edge with the reason it was excluded. Without ip it explains the request's own
// client address (ClientIP). An ip that is not an address gets 400 with a JSON error; methods
// other than GET and HEAD get 405. The path is not looked at: mount it where it belongs.
//
// The answer exposes the network's edges, their deploy and load: do not serve it publicly.
func (h *Handler) Explain() http.Handler { return http.HandlerFunc(h.serveExplain) }

// explainResponse is the JSON of the explain endpoint.
type explainResponse struct {
	Client struct {
		IP  netip.Addr `json:"ip"`
		Geo *GeoRecord `json:"geo"`
	} `json:"client"`
	Deploy     string             `json:"deploy"`
	Basis      Basis              `json:"basis"`
	NearKm     float64            `json:"near_km,omitempty"`
	Code       int                `json:"redirect_code"`
	Chosen     *explainCandidate  `json:"chosen"`
	Candidates []explainCandidate `json:"candidates"`
	Excluded   []explainExclusion `json:"excluded"`
}

type explainCandidate struct {
	Node       string   `json:"node"`
	URL        string   `json:"url"`
	Match      Match    `json:"match"`
	DistanceKm *float64 `json:"distance_km,omitempty"`
	Near       bool     `json:"near"`
	CPU        float64  `json:"cpu"`
	Weight     float64  `json:"weight"`
	Score      float64  `json:"score"`
}

type explainExclusion struct {
	Node   string        `json:"node"`
	URL    string        `json:"url,omitempty"`
	Reason ExcludeReason `json:"reason"`
	Detail string        `json:"detail,omitempty"`
}

func (h *Handler) serveExplain(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeJSONError(w, http.StatusMethodNotAllowed, "method not allowed")
		return
	}
	ip := ClientIP(r, h.trusted)
	if q := r.URL.Query(); q.Has("ip") {
		parsed, ok := parseExplainIP(q.Get("ip"))
		if !ok {
			writeJSONError(w, http.StatusBadRequest, "ip is not an IPv4 or IPv6 address")
			return
		}
		ip = parsed
	}
	d, c, current := h.decide(ip, nopMetrics{}) // admin questions are not visitor traffic
	resp := explainResponse{Deploy: current, Basis: d.Basis, NearKm: d.NearKm, Code: h.code}
	resp.Client.IP, resp.Client.Geo = c.IP, c.Geo
	resp.Candidates = make([]explainCandidate, len(d.Candidates))
	for i, cand := range d.Candidates {
		resp.Candidates[i] = explainCandidateOf(cand)
		if d.Chosen == &d.Candidates[i] {
			resp.Chosen = &resp.Candidates[i]
		}
	}
	now := h.now()
	resp.Excluded = make([]explainExclusion, len(d.Excluded))
	for i, x := range d.Excluded {
		resp.Excluded[i] = explainExclusion{
			Node:   x.Edge.Node,
			URL:    x.Edge.Last.PublicURL,
			Reason: x.Reason,
			Detail: exclusionDetail(x, c, now),
		}
	}
	writeJSON(w, http.StatusOK, resp)
}

// parseExplainIP parses the ip parameter; zones are dropped and IPv4-mapped addresses unmapped,
// as ClientIP does for real clients.
func parseExplainIP(s string) (netip.Addr, bool) {
	if len(s) > maxExplainIPLen {
		return netip.Addr{}, false
	}
	ip, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, false
	}
	return ip.Unmap().WithZone(""), true
}

func explainCandidateOf(c Candidate) explainCandidate {
	ec := explainCandidate{
		Node:   c.Edge.Node,
		URL:    c.URL,
		Match:  c.Match,
		Near:   c.Near,
		CPU:    c.Edge.Last.Load.CPU,
		Weight: c.Weight,
		Score:  c.Score,
	}
	if c.HasDistance {
		km := c.Distance
		ec.DistanceKm = &km
	}
	return ec
}

// exclusionDetail says in a few words what made the rule fail, for people reading the endpoint.
func exclusionDetail(x Exclusion, c Client, now time.Time) string {
	e := x.Edge
	switch x.Reason {
	case ExcludeNotAlive:
		if e.Reason != "" {
			return e.State.String() + ": " + e.Reason
		}
		return e.State.String()
	case ExcludeStale:
		return "last heartbeat " + now.Sub(e.LastSeen).Round(time.Millisecond).String() + " ago"
	case ExcludeNoPublicURL:
		return fmt.Sprintf("url %q", e.Last.PublicURL)
	case ExcludeOldDeploy:
		return "serves deploy " + quoteOrNone(e.Last.Deploy)
	case ExcludeNotSynced:
		return "still syncing deploy " + quoteOrNone(e.Last.Deploy)
	case ExcludeCertificate:
		if e.Last.CertExpiry == 0 {
			return "no certificate reported"
		}
		return "certificate expired " + time.UnixMilli(e.Last.CertExpiry).UTC().Format(time.RFC3339)
	case ExcludeWrongFamily:
		return "client " + familyName(familyOf(c.IP)) + ", edge " + familyName(edgeFamilies(e, e.Last.PublicURL))
	case ExcludeDisabled:
		return "weight 0"
	}
	return ""
}

func quoteOrNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return fmt.Sprintf("%q", s)
}

func familyName(f family) string {
	switch f {
	case familyV4:
		return "IPv4 only"
	case familyV6:
		return "IPv6 only"
	}
	return "IPv4 and IPv6"
}

// writeJSON sends v. Encoding cannot fail for the types of this file (no NaN reaches them: Select
// keeps weights and distances finite), so a failure is reported as a bare 500.
func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		writeJSONError(w, http.StatusInternalServerError, "internal error")
		return
	}
	hdr := w.Header()
	hdr.Set("Content-Type", "application/json")
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}

// writeJSONError sends {"error": msg}; msg is one of this file's fixed texts, never a Go error.
func writeJSONError(w http.ResponseWriter, code int, msg string) {
	hdr := w.Header()
	hdr.Set("Content-Type", "application/json")
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	b, _ := json.Marshal(struct {
		Error string `json:"error"`
	}{msg})
	_, _ = w.Write(append(b, '\n'))
}
