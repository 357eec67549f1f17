package redirector

import (
	"encoding/json"
	"net/http"
	"net/netip"

	"github.com/dt-cdn/dt/edgeset"
)

// maxExplainIPLen bounds the ip parameter: the longest IPv6 text with a zone is far shorter.
const maxExplainIPLen = 100

// maxExplainHostLen bounds the host parameter: a DNS name is at most 253 bytes, with a port and
// a trailing dot a few more.
const maxExplainHostLen = 300

// Explain returns the handler of the explain endpoint, meant for an admin listener (the public
// one redirects every path). GET ?ip=ADDR answers, as JSON, what a visitor from ADDR would get:
// the client's address and GeoIP record, the basis of the choice, the edge chosen by one draw,
// every eligible edge with its match, distance, weight and chance of being chosen (score), and
// every other edge with the reason it was excluded. Without ip it explains the request's own
// client address (ClientIP). With host=NAME it explains for the site claiming NAME (421 with a
// JSON error when none does), naming it in "site"; without host, for the site "default" (the one
// site of a network without sites). An ip that is not an address gets 400 with a JSON error; methods
// other than GET and HEAD get 405. The path is not looked at: mount it where it belongs.
//
// The answer exposes the network's edges, their deploy and load: do not serve it publicly.
func (h *Handler) Explain() http.Handler { return http.HandlerFunc(h.serveExplain) }

// explainResponse is the JSON of the explain endpoint: an edgeset.Explanation with the redirect's
// status code.
type explainResponse struct {
	Client edgeset.ExplainedClient     `json:"client"`
	Site   string                      `json:"site,omitempty"`
	Deploy string                      `json:"deploy"`
	Basis  edgeset.Basis               `json:"basis"`
	NearKm float64                     `json:"near_km,omitempty"`
	Code   int                         `json:"redirect_code"`
	Chosen *edgeset.ExplainedCandidate `json:"chosen"`
	// Target is the origin a visitor is sent to: the chosen edge's public URL, or with a CDN
	// zone its "<site>--<edge>.<zone>" name; empty when no edge is chosen.
	Target     string                       `json:"target,omitempty"`
	Candidates []edgeset.ExplainedCandidate `json:"candidates"`
	Excluded   []edgeset.ExplainedExclusion `json:"excluded"`
	// Fallback: no edge serves the current deploy, and the candidates still serve an earlier
	// one (see edgeset.SelectOptions.Fallback).
	Fallback bool `json:"fallback,omitempty"`
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
	q := r.URL.Query()
	if len(q.Get("host")) > maxExplainHostLen {
		writeJSONError(w, http.StatusBadRequest, "host is too long")
		return
	}
	t, ok := h.siteOf(q.Get("host"), q.Has("host"))
	if !ok {
		writeJSONError(w, http.StatusMisdirectedRequest, "no site claims this host")
		return
	}
	d, c := h.decide(ip, &t, nopMetrics{}) // admin questions are not visitor traffic
	var x edgeset.Explanation
	if t.view != nil {
		x = edgeset.ExplainSite(d, c, t.site, h.now())
	} else {
		_, current := h.edges()
		x = edgeset.Explain(d, c, current, h.now())
	}
	resp := explainResponse{Client: x.Client, Site: x.Site, Deploy: x.Deploy, Basis: x.Basis, NearKm: x.NearKm,
		Code: h.code, Chosen: x.Chosen, Candidates: x.Candidates, Excluded: x.Excluded, Fallback: x.Fallback}
	if d.Chosen != nil {
		resp.Target = h.origin(d.Chosen, t)
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
