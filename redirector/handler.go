package redirector

import (
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/dt-cdn/dt/edgeset"
	"github.com/dt-cdn/dt/geoip"
	"github.com/dt-cdn/dt/heartbeat"
	"github.com/dt-cdn/dt/site"
)

// HandlerConfig configures a Handler. Only Edges is required; zero values of the others mean the
// defaults stated per field. NewHandler copies what it keeps; the config is not used afterwards.
type HandlerConfig struct {
	// Edges returns the edges to choose from (package heartbeat's Tracker.Edges) and the
	// network's current deploy id. It is called once per request, from many goroutines at
	// once, and must be cheap; the Handler only reads the returned slice, and keeps no reference
	// to it past the request.
	Edges func() (edges []heartbeat.Edge, current string)
	// Sites returns the network's sites with the edges and their per-site reports
	// (edgeset.Set.View), called once per request like Edges and under the same rules. When set,
	// the Handler picks the site by the request's Host (edgeset.Sites.Match) and chooses among
	// the edges serving that site's current deploy; a Host no site claims gets 421 Misdirected
	// Request. A network with no site at all is answered as before sites existed, by Edges. Nil:
	// every request is for the one site Edges describes.
	Sites func() *edgeset.View
	// Geo locates clients. Nil: no GeoIP; clients are placed at Select.DefaultLocation or,
	// without one, sent to any eligible edge by weight.
	Geo geoip.Locator
	// TrustedProxies are the networks whose X-Forwarded-For and Forwarded headers are believed
	// (see ClientIP). Empty: none; the connection's peer is the client.
	TrustedProxies []netip.Prefix
	// Code is the redirect status: 301, 302, 307 or 308. Zero: 301, the status the original
	// names. Every redirect carries Cache-Control: private, no-store, so a browser does not keep
	// even a 301 and a visitor is never pinned to an edge that later fails.
	Code int
	// Select tunes the choice of edge (weights, near band, default location). Its Rand is
	// ignored: see Rand.
	Select edgeset.SelectOptions
	// Rand draws among near edges. The Handler serialises calls to it, so it needs no locking
	// of its own; tests pass a seeded source for reproducible choices. Nil: the runtime's
	// random source, which scales across cores.
	Rand rand.Source
	// ACME answers ACME HTTP-01 challenges (RFC 8555 §8.3) under /.well-known/acme-challenge/,
	// which are never redirected. Nil: those paths get 404.
	ACME http.Handler
	// Metrics receives counts of redirects, GeoIP misses and 503s. Nil: none are kept.
	Metrics Metrics
	// Logger receives GeoIP lookup errors (at Warn). Nil discards.
	Logger *slog.Logger
	// Now returns the time to judge heartbeat age and certificates by. Nil: time.Now.
	Now func() time.Time
	// Zone returns the network's CDN zone (netconf), called once per redirect; "" for none.
	// With a zone, a visitor of site S goes to "<S>--<edge>.<zone>" (package cdnzone) with the
	// scheme and port of the chosen edge's public URL; without one, to that URL. Nil: no zone.
	Zone func() string
}

// Handler redirects every request to the chosen edge: Location is the edge's public URL (with a
// CDN zone, HandlerConfig.Zone, "<site>--<edge>.<zone>" with that URL's scheme and port) followed
// by the request's path (as the client escaped it) and query; the status is HandlerConfig.Code;
// Cache-Control is private, no-store. It works for every method, HEAD included, and sends no
// body with a redirect.
//
// With HandlerConfig.Sites the edge is chosen among those serving the site that claims the
// request's Host, and a Host no site claims gets 421 Misdirected Request with a short text.
//
// Exceptions: paths under /.well-known/acme-challenge/ go to HandlerConfig.ACME (404 without
// one), and when no edge is eligible the answer is 503 with Retry-After: 5 and a short plain-text
// explanation, never a redirect to an ineligible edge. Explain serves the reasoning behind a
// decision as JSON for an admin listener.
//
// A Handler is safe for concurrent use.
type Handler struct {
	edges   func() ([]heartbeat.Edge, string)
	sites   func() *edgeset.View
	geo     geoip.Locator
	trusted []netip.Prefix
	code    int
	opts    edgeset.SelectOptions
	acme    http.Handler
	metrics Metrics
	log     *slog.Logger
	now     func() time.Time
	zone    func() string
	labels  labelCache
}

var _ http.Handler = (*Handler)(nil)

// acmePrefix is where ACME HTTP-01 challenges are fetched (RFC 8555 §8.3).
const acmePrefix = "/.well-known/acme-challenge/"

// retryAfterSeconds is the Retry-After of a 503: about two heartbeat intervals, long enough for an
// edge that finished syncing or came back to be seen.
const retryAfterSeconds = "5"

// misdirectedBody explains a 421 to a person: the name they asked for is no site's here.
const misdirectedBody = "This server does not serve a site under this name.\n"

// unavailableBody explains a 503 to a person.
const unavailableBody = "No server can deliver this site right now: every edge is down, draining or still " +
	"receiving the latest version. Please try again in a few seconds.\n"

// NewHandler checks cfg and returns a Handler. It fails with ErrInvalidConfig (joined with every
// problem found) when Edges is missing, Code is not a redirect status, a weight is negative or
// not finite, a trusted network is invalid, or a select option is out of range.
func NewHandler(cfg HandlerConfig) (*Handler, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	h := &Handler{
		edges:   cfg.Edges,
		sites:   cfg.Sites,
		geo:     cfg.Geo,
		trusted: make([]netip.Prefix, len(cfg.TrustedProxies)),
		code:    cfg.Code,
		opts:    cfg.Select,
		acme:    cfg.ACME,
		metrics: cfg.Metrics,
		log:     cfg.Logger,
		now:     cfg.Now,
		zone:    cfg.Zone,
	}
	for i, p := range cfg.TrustedProxies {
		h.trusted[i] = p.Masked()
	}
	if cfg.Select.Weights != nil {
		h.opts.Weights = make(map[string]float64, len(cfg.Select.Weights))
		for k, v := range cfg.Select.Weights {
			h.opts.Weights[k] = v
		}
	}
	if loc := cfg.Select.DefaultLocation; loc != nil {
		c := *loc
		h.opts.DefaultLocation = &c
	}
	h.opts.Rand = nil
	// A visitor arriving while the edges switch to a new deploy gets the previous one rather
	// than 503.
	h.opts.Fallback = true
	if cfg.Rand != nil {
		h.opts.Rand = &lockedSource{src: cfg.Rand}
	}
	if h.code == 0 {
		h.code = http.StatusMovedPermanently
	}
	if h.metrics == nil {
		h.metrics = nopMetrics{}
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if h.now == nil {
		h.now = time.Now
	}
	return h, nil
}

func (cfg *HandlerConfig) validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...))
	}
	if cfg.Edges == nil {
		bad("Edges is required")
	}
	switch cfg.Code {
	case 0, http.StatusMovedPermanently, http.StatusFound, http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
	default:
		bad("Code %d is not 301, 302, 307 or 308", cfg.Code)
	}
	for _, p := range cfg.TrustedProxies {
		if !p.IsValid() {
			bad("trusted proxy network %v is invalid", p)
		}
	}
	if err := cfg.Select.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("%w: %w", ErrInvalidConfig, err))
	}
	return errors.Join(errs...)
}

// ServeHTTP answers r with a redirect to the chosen edge (see Handler).
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if isACME(r.URL.Path) {
		h.serveACME(w, r)
		return
	}
	target, ok := h.siteOf(r.Host, true)
	if !ok {
		h.misdirected(w)
		return
	}
	d, _ := h.decide(ClientIP(r, h.trusted), &target, h.metrics)
	if d.Chosen == nil {
		h.unavailable(w)
		return
	}
	h.metrics.Redirected(d.Chosen.Edge.Node, h.code)
	if m, ok := h.metrics.(siteRedirects); ok {
		name := target.site.Name
		if name == "" {
			name = site.DefaultSite // a network without site records
		}
		m.RedirectedSite(name, d.Chosen.Edge.Node, redirectReason(&d))
	}
	hdr := w.Header()
	hdr["Location"] = []string{location(h.origin(d.Chosen, target), r)}
	hdr["Cache-Control"] = []string{"private, no-store"}
	w.WriteHeader(h.code)
}

// redirectReason says why a visitor went to the chosen edge, as the dashboard shows it: the
// edge's match with the visitor's place ("same country", "same continent", "elsewhere"),
// "no client geo" when the visitor's place was unknown, or "fallback" when no edge served the
// site's current deploy yet.
func redirectReason(d *edgeset.Decision) string {
	switch {
	case d.Fallback:
		return "fallback"
	case d.Basis == edgeset.BasisNone:
		return edgeset.BasisNone.String()
	}
	return d.Chosen.Match.String()
}

// target is what a request is decided for: a site of a View, or (view nil) the one site of
// HandlerConfig.Edges, whose edges decide keeps in edges.
type target struct {
	view  *edgeset.View
	site  edgeset.Site
	edges []heartbeat.Edge
}

// siteOf returns the target of a request for host: with Sites, the site claiming host (when
// byHost; DefaultSite otherwise), false when none does; without Sites, or while the network has
// no site at all, the one site of Edges.
func (h *Handler) siteOf(host string, byHost bool) (target, bool) {
	if h.sites == nil {
		return target{}, true
	}
	v := h.sites()
	if len(v.Sites.List()) == 0 {
		return target{}, true
	}
	if !byHost {
		// A network whose sites all have records may have no default site: nothing serves it.
		s, ok := v.Sites.Lookup(site.DefaultSite)
		if !ok {
			s = edgeset.Site{Name: site.DefaultSite}
		}
		return target{view: v, site: s}, true
	}
	s, ok := v.Sites.Match(host)
	return target{view: v, site: s}, ok
}

// decide looks the client up and chooses for t; it also returns the client. GeoIP misses go to m.
func (h *Handler) decide(ip netip.Addr, t *target, m Metrics) (edgeset.Decision, edgeset.Client) {
	c := edgeset.Client{IP: ip}
	if h.geo != nil {
		rec, err := h.geo.Lookup(ip)
		if err != nil {
			h.log.Warn("GeoIP lookup failed", "ip", ip, "err", err)
		}
		if rec == nil {
			m.GeoMiss()
		}
		c.Geo = rec
	}
	if t.view != nil {
		return edgeset.SelectSite(t.view, t.site, c, h.now(), h.opts), c
	}
	edges, current := h.edges()
	t.edges = edges
	return edgeset.Select(edges, c, current, h.now(), h.opts), c
}

// location is the redirect target: the edge origin, then the request's path as the client
// escaped it (EscapedPath keeps the client's spelling when it is valid) and its raw query. A
// request-target that is not a path (OPTIONS *, CONNECT authority) goes to the root.
func location(origin string, r *http.Request) string {
	path := r.URL.EscapedPath()
	if !strings.HasPrefix(path, "/") {
		path = "/"
	}
	if r.URL.RawQuery == "" {
		return origin + path
	}
	return origin + path + "?" + r.URL.RawQuery
}

// isACME reports whether path is an ACME HTTP-01 challenge path, or the bare directory.
func isACME(path string) bool {
	return strings.HasPrefix(path, acmePrefix) || path == strings.TrimSuffix(acmePrefix, "/")
}

func (h *Handler) serveACME(w http.ResponseWriter, r *http.Request) {
	if h.acme != nil {
		h.acme.ServeHTTP(w, r)
		return
	}
	http.Error(w, "404 page not found", http.StatusNotFound)
}

// misdirected answers a request for a host no site claims: 421 Misdirected Request (RFC 9110
// §15.5.20), never another site's edge.
func (h *Handler) misdirected(w http.ResponseWriter) {
	if m, ok := h.metrics.(interface{ Misdirected() }); ok {
		m.Misdirected()
	}
	hdr := w.Header()
	hdr["Cache-Control"] = []string{"private, no-store"}
	hdr["Content-Type"] = []string{"text/plain; charset=utf-8"}
	hdr["X-Content-Type-Options"] = []string{"nosniff"}
	w.WriteHeader(http.StatusMisdirectedRequest)
	_, _ = w.Write([]byte(misdirectedBody))
}

func (h *Handler) unavailable(w http.ResponseWriter) {
	h.metrics.Unavailable()
	hdr := w.Header()
	hdr["Retry-After"] = []string{retryAfterSeconds}
	hdr["Cache-Control"] = []string{"private, no-store"}
	hdr["Content-Type"] = []string{"text/plain; charset=utf-8"}
	hdr["X-Content-Type-Options"] = []string{"nosniff"}
	w.WriteHeader(http.StatusServiceUnavailable)
	_, _ = w.Write([]byte(unavailableBody)) // a client gone away is no concern of ours; HEAD writes nothing
}

// lockedSource serialises a rand.Source that is not safe for concurrent use.
type lockedSource struct {
	mu  sync.Mutex
	src rand.Source // guarded by mu
}

func (l *lockedSource) Uint64() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.src.Uint64()
}
