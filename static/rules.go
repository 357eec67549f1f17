package static

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/dt-cdn/dt/site"
)

// redirectRule is a _redirects rule the edge applies (see compileRedirects).
type redirectRule struct {
	from, to string
	status   int
	force    bool
}

// compileRedirects keeps the rules the edge can apply, in order: a source that is a path, and
// a status of 200 (rewrite to a path of the site), 301, 302, 303, 307, 308, or 4xx. Domain
// rules ("https://old.example/*"), proxy rules (200 to an absolute URL) and other statuses are
// dropped: the edge serves the deploy's files and nothing else. A zero status is 301, the
// default of the _redirects syntax.
func compileRedirects(rules []site.Redirect) []redirectRule {
	var out []redirectRule
	for _, r := range rules {
		status := r.Status
		if status == 0 {
			status = http.StatusMovedPermanently
		}
		switch {
		case !strings.HasPrefix(r.From, "/") || r.To == "":
			continue
		case status == http.StatusOK:
			if !strings.HasPrefix(r.To, "/") || strings.HasPrefix(r.To, "//") {
				continue
			}
		case isRedirectStatus(status), status >= 400 && status < 500:
		default:
			continue
		}
		out = append(out, redirectRule{from: r.From, to: r.To, status: status, force: r.Force})
	}
	return out
}

func isRedirectStatus(status int) bool {
	switch status {
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther,
		http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		return true
	}
	return false
}

// anyRuleMatches reports whether a _redirects rule (a forced one only, if forcedOnly) matches p.
// NewSite uses it to send the requests that rules may change down the slow path.
func (s *Site) anyRuleMatches(p string, forcedOnly bool) bool {
	for _, r := range s.redirects {
		if (!forcedOnly || r.force) && matchPattern(r.from, p) {
			return true
		}
	}
	return false
}

// answer is how the site answers a request path: a redirect (location set), a file with a
// status (file set), or a plain error with a status.
type answer struct {
	status   int
	file     *file
	headers  *headerSet
	location string
}

// resolve answers a path the route table does not settle alone, in Netlify's order:
//
//  1. _redirects rules, first match wins. A rule without "!" is shadowed (skipped) when a file
//     answers the path (exact, directory index or clean URL). 200 serves the target's file at
//     this path (a rewrite, one level: the target is not matched against the rules again); a
//     redirect status sends Location; 4xx serves the target's file with that status, or else
//     the nearest 404.html, or else a plain error.
//  2. The route table: the file, or the canonical redirect.
//  3. SPA: /index.html with 200 for a path whose last segment has no dot (see looksLikeFile).
//  4. The nearest 404.html with 404, or a plain 404.
//
// Hidden paths (a dot segment other than /.well-known) skip 1 to 3: they are never served.
// resolve allocates; the handler calls it only for paths whose route is missing or slow.
func (s *Site) resolve(p, rawQuery string, hidden bool) answer {
	if hidden {
		return s.notFoundAnswer(p, http.StatusNotFound)
	}
	rt := s.routes[p]
	exists := rt != nil && rt.location == ""
	for i := range s.redirects {
		r := &s.redirects[i]
		if exists && !r.force {
			continue
		}
		params, ok := site.MatchRule(r.from, p)
		if !ok {
			continue
		}
		switch {
		case r.status == http.StatusOK:
			f := s.lookup(site.ExpandRedirect(r.to, params))
			if f == nil {
				return s.notFoundAnswer(p, http.StatusNotFound)
			}
			return answer{status: http.StatusOK, file: f, headers: s.headersFor(f, p, nil)}
		case isRedirectStatus(r.status):
			return answer{status: r.status, location: redirectLocation(r.to, params, rawQuery)}
		default:
			if f := s.lookup(site.ExpandRedirect(r.to, params)); f != nil {
				return answer{status: r.status, file: f, headers: s.headersFor(f, p, nil)}
			}
			return s.notFoundAnswer(p, r.status)
		}
	}
	switch {
	case rt != nil && rt.location != "":
		loc := rt.location
		if rawQuery != "" {
			loc += "?" + rawQuery
		}
		return answer{status: http.StatusMovedPermanently, location: loc}
	case rt != nil:
		return answer{status: http.StatusOK, file: rt.file, headers: rt.headers}
	case s.index != nil && !looksLikeFile(p):
		return answer{status: http.StatusOK, file: s.index, headers: s.headersFor(s.index, p, nil)}
	}
	return s.notFoundAnswer(p, http.StatusNotFound)
}

// lookup finds the file a rule target names: a site path, maybe with a query or fragment (which
// a rewrite drops) and percent-encoding.
func (s *Site) lookup(target string) *file {
	if i := strings.IndexAny(target, "?#"); i >= 0 {
		target = target[:i]
	}
	if u, err := url.PathUnescape(target); err == nil {
		target = u
	}
	if rt := s.routes[target]; rt != nil {
		return rt.file
	}
	return nil
}

// looksLikeFile reports whether a path's last segment has a dot ("/app.js", "/favicon.ico").
// The SPA fallback skips such paths: a missing asset gets a 404, not the HTML of the app with a
// 200, which a browser would try to run as a script or cache as an image.
func looksLikeFile(p string) bool {
	return strings.IndexByte(p[strings.LastIndexByte(p, '/')+1:], '.') >= 0
}

// notFoundAnswer serves the nearest 404.html with status, walking up from the directory of p
// ("/a/b/c" tries /a/b/404.html, /a/404.html, /404.html), or a plain error if there is none.
func (s *Site) notFoundAnswer(p string, status int) answer {
	for dir := p; ; {
		i := strings.LastIndexByte(dir, '/')
		if i < 0 {
			return answer{status: status}
		}
		dir = dir[:i]
		if f := s.notFound[dir]; f != nil {
			return answer{status: status, file: f, headers: s.headersFor(f, p, nil)}
		}
	}
}

// redirectLocation expands a redirect rule's target with the captured placeholders and splat.
// Captured values come from the decoded request path, so they are percent-encoded again: a
// value cannot add a query, a fragment or a line break to Location. A target that is a path
// stays a path: "/go/*  /:splat" with "/go//evil.example" would otherwise expand to
// "//evil.example", a network-path reference to another host (an open redirect). The request's
// query string is kept when the target has none (Netlify's rule).
func redirectLocation(to string, params map[string]string, rawQuery string) string {
	esc := make(map[string]string, len(params))
	for k, v := range params {
		esc[k] = (&url.URL{Path: v}).EscapedPath()
	}
	loc := site.ExpandRedirect(to, esc)
	if strings.HasPrefix(to, "/") && !strings.HasPrefix(to, "//") {
		for strings.HasPrefix(loc, "//") {
			loc = loc[1:]
		}
	}
	if rawQuery != "" && !strings.Contains(loc, "?") {
		loc += "?" + rawQuery
	}
	return loc
}
