package edgeset

import (
	"math"
	"net/netip"
	"strings"
	"time"

	"github.com/dt-cdn/dt/heartbeat"
)

// family is a set of IP families.
type family uint8

const (
	familyV4 family = 1 << iota
	familyV6

	familyAny = familyV4 | familyV6
)

// familyOf is the family of a client's address; an unknown address imposes none.
func familyOf(ip netip.Addr) family {
	switch {
	case !ip.IsValid():
		return familyAny
	case ip.Unmap().Is4():
		return familyV4
	}
	return familyV6
}

// deployRule is the deploy an edge must serve to be eligible: the current deploy of the site
// DefaultSite (current, judged by the edge's Deploy and Synced, which edges of every release
// report), or, when site is set, a rule of SelectSite over the edges' per-site reports.
type deployRule struct {
	current string
	site    func(e *heartbeat.Edge) (ExcludeReason, string)
	// earlier reports whether an edge the rule excludes still serves an earlier deploy of the
	// site, for SelectOptions.Fallback; nil: no fallback.
	earlier func(e *heartbeat.Edge) bool
	// any accepts every deploy: the rule of the fallback's second pass.
	any bool
}

// exclusion returns why e does not serve the deploy, and 0 when it does.
func (r deployRule) exclusion(e *heartbeat.Edge) (ExcludeReason, string) {
	switch {
	case r.any:
		return 0, ""
	case r.site != nil:
		return r.site(e)
	case r.current == "" || e.Last.Deploy != r.current:
		return ExcludeOldDeploy, ""
	case !e.Last.Synced:
		return ExcludeNotSynced, ""
	}
	return 0, ""
}

// exclusionOf checks one edge against every eligibility rule, in the order of ExcludeReason, and
// returns the first that fails with its detail (when the edge alone cannot tell it), or 0 and
// the origin to redirect to.
func exclusionOf(e *heartbeat.Edge, client family, rule deployRule, now time.Time, opts SelectOptions) (string, ExcludeReason, string) {
	if e.State != heartbeat.Alive {
		return "", ExcludeNotAlive, ""
	}
	if isStale(e, now, opts) {
		return "", ExcludeStale, ""
	}
	url, https, ok := publicOrigin(e.Last.PublicURL)
	if !ok {
		return "", ExcludeNoPublicURL, ""
	}
	if e.Last.Draining {
		return "", ExcludeDraining, ""
	}
	if reason, detail := rule.exclusion(e); reason != 0 {
		return "", reason, detail
	}
	if https {
		if ok, detail := certFor(e, certName(url, opts), now); !ok {
			return "", ExcludeCertificate, detail
		}
	}
	switch {
	case edgeFamilies(e, url)&client == 0:
		return "", ExcludeWrongFamily, ""
	case !usableWeight(configuredWeight(e, opts.Weights)):
		return "", ExcludeDisabled, ""
	}
	return url, 0, ""
}

// isStale reports whether the edge's last heartbeat arrived longer ago than maxAge allows it. The
// local arrival time is used, not the heartbeat's own timestamp: the edge's clock may be off.
func isStale(e *heartbeat.Edge, now time.Time, opts SelectOptions) bool {
	return now.Sub(e.LastSeen) > maxAge(e, opts)
}

// maxAge is how old e's last heartbeat may be: MaxAgeBeats of the interval it announces, or MaxAge
// when it announces none.
func maxAge(e *heartbeat.Edge, opts SelectOptions) time.Duration {
	if e.Last.IntervalMS > 0 {
		beats := opts.MaxAgeBeats
		if beats <= 0 {
			beats = DefaultMaxAgeBeats
		}
		return time.Duration(beats * float64(e.Last.IntervalOr(0)))
	}
	if opts.MaxAge <= 0 {
		return DefaultMaxAge
	}
	return opts.MaxAge
}

// certValid reports whether a certificate expiring at expiry (Unix milliseconds, as heartbeats
// report it; 0 for none) is valid at now. An edge whose certificate has lapsed would show
// visitors a browser error page, which is worse than sending them further away.
func certValid(expiry int64, now time.Time) bool {
	return expiry != 0 && now.Before(time.UnixMilli(expiry))
}

// certName is the name visitors will ask the edge's certificate for: opts.CertName, else the
// host of the edge's origin, lower case.
func certName(origin string, opts SelectOptions) string {
	if opts.CertName != "" {
		return strings.TrimSuffix(strings.ToLower(opts.CertName), ".")
	}
	_, rest, _ := strings.Cut(origin, "://")
	host, _, _ := strings.Cut(rest, "/")
	if strings.HasPrefix(host, "[") {
		host, _, _ = strings.Cut(host[1:], "]")
	} else {
		host, _, _ = strings.Cut(host, ":")
	}
	return strings.ToLower(host)
}

// certFor reports whether the edge holds a valid certificate for name at now, and when it does
// not, a detail naming the name (empty when the edge judged by CertExpiry alone). An edge that
// reports its names (heartbeat.Certs) is judged by them, a wildcard of name's parent counting; one
// of an earlier release by CertExpiry, the certificate of its own host, as before.
func certFor(e *heartbeat.Edge, name string, now time.Time) (bool, string) {
	if valid, known := e.Last.Certs.ValidFor(name, now); known {
		if valid {
			return true, ""
		}
		return false, "no valid certificate for " + name
	}
	return certValid(e.Last.CertExpiry, now), ""
}

// usableWeight reports whether a configured weight lets an edge take visitors.
func usableWeight(w float64) bool {
	return w > 0 && !math.IsInf(w, 1)
}

// publicOrigin checks that s is an absolute http(s) URL with a host and nothing after the path
// (heartbeat.Decode checks the same; Edge values may come from elsewhere) and returns it without
// a trailing slash, whether it is https, and whether it is usable. It refuses bytes that could
// not be sent in a Location header. It does not allocate.
func publicOrigin(s string) (origin string, https, ok bool) {
	rest, found := cutPrefixFold(s, "https://")
	https = found
	if !found {
		if rest, found = cutPrefixFold(s, "http://"); !found {
			return "", false, false
		}
	}
	if rest == "" || rest[0] == '/' {
		return "", false, false // no host
	}
	for i := range len(rest) {
		switch c := rest[i]; {
		case c <= ' ' || c >= 0x7f, c == '?', c == '#', c == '@', c == '\\':
			return "", false, false
		}
	}
	return strings.TrimRight(s, "/"), https, true
}

// cutPrefixFold is strings.CutPrefix with an ASCII case-insensitive prefix (URL schemes are
// case-insensitive, RFC 3986 §3.1).
func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix) {
		return s[len(prefix):], true
	}
	return s, false
}

// edgeFamilies is the set of IP families that can reach an edge: the families of the addresses
// its heartbeat reports; failing those, the family of its URL's host when that is an IP literal;
// failing that, both. An edge that reports no address is trusted to be reachable by the name in
// its URL over either family, since the chooser cannot know what that name resolves to;
// operators of single-stack edges should let them report their address.
func edgeFamilies(e *heartbeat.Edge, origin string) family {
	var f family
	if e.Last.IPv4.IsValid() {
		f |= familyV4
	}
	if e.Last.IPv6.IsValid() {
		f |= familyV6
	}
	if f != 0 {
		return f
	}
	if ip, ok := hostIP(origin); ok {
		return familyOf(ip)
	}
	return familyAny
}

// hostIP returns the URL host of origin as an address, when it is an IP literal (RFC 3986
// §3.2.2: IPv6 in brackets).
func hostIP(origin string) (netip.Addr, bool) {
	_, rest, _ := strings.Cut(origin, "://")
	host, _, _ := strings.Cut(rest, "/")
	if strings.HasPrefix(host, "[") {
		end := strings.IndexByte(host, ']')
		if end < 0 {
			return netip.Addr{}, false
		}
		ip, err := netip.ParseAddr(host[1:end])
		return ip, err == nil
	}
	host, _, _ = strings.Cut(host, ":")
	ip, err := netip.ParseAddr(host)
	return ip, err == nil
}

// Live reports whether e is alive and its last heartbeat fresh by opts' staleness bounds
// (MaxAge, MaxAgeBeats): what an edge's own name under the CDN zone needs, whatever it serves.
func Live(e *heartbeat.Edge, now time.Time, opts SelectOptions) bool {
	return e.State == heartbeat.Alive && !isStale(e, now, opts)
}
