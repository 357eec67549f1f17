// Package heartbeat defines what an edge tells the network about itself every couple of seconds,
// and how the rest of the network (the redirector, the publisher, the dashboard) turns those
// reports into a view of which edges are alive and serving which deploy.
//
// Heartbeats travel as dt messages, so they are signed by the edge's node identity: a receiver
// takes the sender from the message (dt.Event.From), never from the payload, and a node cannot
// speak for another.
//
// Each heartbeat announces its sender's interval (Heartbeat.IntervalMS), and a Tracker judges
// every edge's silence by the interval that edge announces, so receivers need no setting that
// matches the edges'. Heartbeats of earlier releases announce none; a Tracker judges those by its
// Config.Interval, and receivers of earlier releases ignore the field.
package heartbeat

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"net/url"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/dt-cdn/dt/netconf"
)

// Type is the value of the "type" field that marks a dt message as a heartbeat.
const Type = "heartbeat"

// Version is the heartbeat format written by this code. Readers accept newer minor additions
// (unknown fields are ignored) and refuse other versions.
const Version = 1

// MaxSize bounds an encoded heartbeat: its useful fields take about 200 bytes, so 4 KiB leaves
// room for long names and URLs while keeping a bad sender from flooding receivers with large ones.
const MaxSize = 4 << 10

// DefaultInterval is how often an edge sends a heartbeat unless configured otherwise, and the
// interval a receiver assumes for an edge that does not announce its own (an edge older than
// Heartbeat.IntervalMS). Two seconds lets a dead edge leave the redirector's choice within about
// six seconds (DefaultSuspectBeats) for a few hundred bytes per edge every two seconds.
const DefaultInterval = 2 * time.Second

// Bounds of an announced interval (Heartbeat.IntervalMS). Receivers check their edges at a
// quarter of the shortest interval announced, so a lower bound keeps a mistaken edge from making
// every receiver spin; an edge silent for more than an hour between heartbeats is of no use to a
// redirector.
const (
	MinInterval = 10 * time.Millisecond
	MaxInterval = time.Hour
)

// Heartbeat is one report of an edge.
type Heartbeat struct {
	Type    string `json:"type"` // always Type
	V       int    `json:"v"`    // format version
	Seq     uint64 `json:"seq"`  // increases by one per heartbeat of a process; restarts at 1
	Time    int64  `json:"time"` // Unix milliseconds at the edge
	Version string `json:"version,omitempty"`
	// Name is what the operator calls the edge ("ams-1"), for people reading dashboards; empty:
	// none given.
	Name string `json:"name,omitempty"`

	// PublicURL is where visitors reach this edge ("https://e1.example.com").
	PublicURL string     `json:"url"`
	IPv4      netip.Addr `json:"ipv4,omitzero"`
	IPv6      netip.Addr `json:"ipv6,omitzero"`
	Location  *Location  `json:"loc,omitempty"`

	// Deploy is the deploy the edge serves; Synced says it holds every blob of the network's
	// current deploy (so Deploy is the current one).
	// They are the default site's (site/current), the one site of a network of an earlier
	// release, which receivers of that release read.
	Deploy string `json:"deploy,omitempty"`
	Synced bool   `json:"synced"`

	// Sites is how many sites the edge knows. Lagging lists, sorted by site, the sites whose
	// current deploy the edge does not serve yet (at most MaxLagging of them), and LaggingMore
	// counts those that did not fit: while it is positive, receivers take every site as lagging
	// (see LaggingOn). SitesDigest (DigestLen hex digits, see SitesDigest) changes whenever a
	// deploy the edge serves does. All four are empty in heartbeats of earlier releases, whose
	// readers ignore them; see SetSites.
	Sites       int    `json:"sites,omitempty"`
	Lagging     []Lag  `json:"lagging,omitempty"`
	LaggingMore int    `json:"lagging_more,omitempty"`
	SitesDigest string `json:"sites_digest,omitempty"`
	// CurrentDigest is CurrentsDigest of the current deploys the edge knows (DigestLen hex
	// digits): a receiver that knows the same ones learns from it that the edge has heard of
	// every publish it has, so that a site missing from Lagging is served (see ServesSite).
	// Empty in heartbeats of earlier releases, whose readers ignore it, and with SitesDigest.
	CurrentDigest string `json:"current_digest,omitempty"`
	// SitesRefused is set by Decode when the per-site fields were malformed and dropped, for
	// receivers to count; it is not sent.
	SitesRefused error `json:"-"`

	Objects  int64  `json:"objects"`
	Bytes    int64  `json:"bytes"`
	DiskFree uint64 `json:"disk_free"`
	Load     Load   `json:"load"`

	// CertExpiry is when the edge's TLS certificate for its public URL's host expires, in Unix
	// milliseconds, whether from the table or its own (zero: no certificate, plain HTTP).
	CertExpiry int64 `json:"cert_expiry,omitempty"`
	// Certs reports every name the edge serves and its certificate's expiry (see Certs and
	// SetCerts). Nil in heartbeats of earlier releases, whose readers ignore it; receivers then
	// judge the edge by CertExpiry alone.
	Certs *Certs `json:"certs,omitempty"`
	// ACME counts the live ACME challenge records (the table's acme/ answers) the edge holds, and
	// ACMEDigest is challenge.Digest of their table keys: an issuer compares it with the digest
	// of the live records it wrote, to tell the CA to validate only once every live edge can
	// answer. Both are empty in heartbeats of earlier releases.
	ACME       int    `json:"acme,omitempty"`
	ACMEDigest string `json:"acme_digest,omitempty"`
	// Draining is set on graceful shutdown: send no new visitors here.
	Draining bool `json:"draining,omitempty"`
	// IntervalMS is the sender's heartbeat interval in milliseconds, between MinInterval and
	// MaxInterval, so that receivers judge its silence by its own schedule rather than by a
	// setting of theirs. Zero: not announced (edges older than this field); receivers fall back
	// to their configured interval (see IntervalOr). Readers that predate the field ignore it.
	IntervalMS int64 `json:"interval_ms,omitempty"`
	// CDNZone is the CDN zone (netconf) whose names the edge serves, so that DNS nodes and
	// redirectors send visitors by those names only to edges that answer them. Empty: none, or
	// an edge of a release before the field, whose readers ignore it. Decode drops a value that
	// is not a zone (netconf.CheckZone), keeping the heartbeat.
	CDNZone string `json:"cdn_zone,omitempty"`
	// SiteSettings is set by edges that read site records holding serving settings
	// (site.Settings). Edges of earlier releases refuse such a record and drop its site, so a
	// master writes settings only while every live edge sets it. Readers that predate the
	// field ignore it.
	SiteSettings bool `json:"site_settings,omitempty"`
}

// Location is where an edge is.
type Location struct {
	Lat       float64 `json:"lat"`
	Lon       float64 `json:"lon"`
	Country   string  `json:"country,omitempty"`   // ISO 3166-1 alpha-2
	Continent string  `json:"continent,omitempty"` // two-letter code: EU, NA, …
}

// Load is how busy an edge is.
type Load struct {
	CPU          float64 `json:"cpu"`            // 0..1 of all cores, over the last interval
	RequestsPS   float64 `json:"rps"`            // requests per second
	BytesPS      float64 `json:"bps"`            // response bytes per second
	ErrorRate5xx float64 `json:"err5xx"`         // fraction of responses with status 5xx
	Connections  int64   `json:"conns,omitzero"` // open client connections
}

// Errors returned by Decode.
var (
	// ErrNotHeartbeat is returned for a message that is not a heartbeat (other message types
	// share the network).
	ErrNotHeartbeat = errors.New("heartbeat: not a heartbeat")
	// ErrInvalid is returned for a heartbeat that does not decode or whose fields are out of range.
	ErrInvalid = errors.New("heartbeat: invalid")
)

// Encode returns the JSON form of h, with Type and V filled in.
func Encode(h Heartbeat) ([]byte, error) {
	h.Type, h.V = Type, Version
	if err := h.validate(); err != nil {
		return nil, err
	}
	b, err := json.Marshal(h)
	if err != nil {
		return nil, fmt.Errorf("heartbeat: encode: %w", err)
	}
	if len(b) > MaxSize {
		return nil, fmt.Errorf("%w: %d bytes over %d", ErrInvalid, len(b), MaxSize)
	}
	return b, nil
}

// Decode parses a dt message payload. It returns ErrNotHeartbeat for other messages and
// ErrInvalid for heartbeats that are malformed; it never trusts the payload's values further
// than validate checks them. A heartbeat whose per-site fields (Sites, Lagging, LaggingMore,
// SitesDigest, CurrentDigest) are malformed is returned without them, as from an edge of an
// earlier release, with SitesRefused saying why; so is one whose certificate report (Certs, ACME,
// ACMEDigest) is, without it.
func Decode(b []byte) (Heartbeat, error) {
	var h Heartbeat
	if len(b) > MaxSize {
		return h, fmt.Errorf("%w: %d bytes over %d", ErrInvalid, len(b), MaxSize)
	}
	var probe struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(b, &probe); err != nil || probe.Type != Type {
		return h, ErrNotHeartbeat
	}
	if err := json.Unmarshal(b, &h); err != nil {
		return h, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if h.V != Version {
		return h, fmt.Errorf("%w: version %d", ErrInvalid, h.V)
	}
	if err := h.validateBase(); err != nil {
		return h, err
	}
	if err := h.validateSites(); err != nil {
		// Malformed per-site fields cost the edge its report of sites, not its heartbeat: it
		// counts as an edge of an earlier release (the default site's Deploy and Synced only).
		h.Sites, h.Lagging, h.LaggingMore, h.SitesDigest, h.CurrentDigest = 0, nil, 0, "", ""
		h.SitesRefused = err
	}
	if h.validateCerts() != nil {
		// Likewise, a malformed certificate report leaves the edge judged by CertExpiry.
		h.Certs, h.ACME, h.ACMEDigest = nil, 0, ""
	}
	if h.CDNZone != "" && netconf.CheckZone(h.CDNZone) != nil {
		h.CDNZone = ""
	}
	return h, nil
}

// validate checks every field, the per-site ones included (validateSites): what Encode sends.
func (h *Heartbeat) validate() error {
	if err := h.validateBase(); err != nil {
		return err
	}
	if err := h.validateCerts(); err != nil {
		return err
	}
	if h.CDNZone != "" {
		if err := netconf.CheckZone(h.CDNZone); err != nil {
			return fmt.Errorf("%w: %w", ErrInvalid, err)
		}
	}
	return h.validateSites()
}

// validateCerts checks the certificate report and the challenge count and digest.
func (h *Heartbeat) validateCerts() error {
	if err := h.Certs.validate(); err != nil {
		return err
	}
	if h.ACME < 0 || h.ACMEDigest != "" && (len(h.ACMEDigest) != DigestLen || !isHex(h.ACMEDigest)) {
		return fmt.Errorf("%w: acme %d, digest %q", ErrInvalid, h.ACME, h.ACMEDigest)
	}
	return nil
}

// validateBase checks ranges, so that no consumer has to: a URL it can redirect to, a real
// location, finite non-negative load figures.
func (h *Heartbeat) validateBase() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, args...)...)
	}
	if h.Seq == 0 {
		return bad("sequence 0")
	}
	u, err := url.Parse(h.PublicURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return bad("public URL %q is not an http(s) origin", h.PublicURL)
	}
	if h.IPv4.IsValid() && !h.IPv4.Is4() {
		return bad("ipv4 %s", h.IPv4)
	}
	if h.IPv6.IsValid() && (!h.IPv6.Is6() || h.IPv6.Is4In6()) {
		return bad("ipv6 %s", h.IPv6)
	}
	if l := h.Location; l != nil {
		if !finite(l.Lat, l.Lon) || l.Lat < -90 || l.Lat > 90 || l.Lon < -180 || l.Lon > 180 {
			return bad("location %v,%v", l.Lat, l.Lon)
		}
		if len(l.Country) > 2 || len(l.Continent) > 2 {
			return bad("country %q, continent %q", l.Country, l.Continent)
		}
	}
	ld := h.Load
	if !finite(ld.CPU, ld.RequestsPS, ld.BytesPS, ld.ErrorRate5xx) || ld.CPU < 0 || ld.RequestsPS < 0 || ld.BytesPS < 0 ||
		ld.ErrorRate5xx < 0 || ld.ErrorRate5xx > 1 || ld.Connections < 0 {
		return bad("load %+v", ld)
	}
	if h.IntervalMS != 0 && (h.IntervalMS < MinInterval.Milliseconds() || h.IntervalMS > MaxInterval.Milliseconds()) {
		return bad("interval %d ms outside %v..%v", h.IntervalMS, MinInterval, MaxInterval)
	}
	if h.Objects < 0 || h.Bytes < 0 {
		return bad("negative counts")
	}
	if len(h.Deploy) > 128 || len(h.Version) > 64 || len(h.Name) > maxNameLen {
		return bad("field too long")
	}
	if !printable(h.Name) || !printable(h.Version) {
		return bad("name or version with control characters")
	}
	return nil
}

// maxNameLen bounds Heartbeat.Name.
const maxNameLen = 64

// printable reports whether s is valid UTF-8 without control characters: it is shown to people.
func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}

func finite(vs ...float64) bool {
	for _, v := range vs {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return false
		}
	}
	return true
}

// At returns the heartbeat's send time.
func (h Heartbeat) At() time.Time { return time.UnixMilli(h.Time) }

// IntervalOr returns the interval the sender announced, or fallback when it announced none (an
// edge of an earlier release). Receivers pass their configured interval as fallback.
func (h Heartbeat) IntervalOr(fallback time.Duration) time.Duration {
	if h.IntervalMS > 0 {
		return time.Duration(h.IntervalMS) * time.Millisecond
	}
	return fallback
}
