package certs

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// acmeChallengePrefix is where an ACME server fetches http-01 key authorizations
// (RFC 8555 §8.3).
const acmeChallengePrefix = "/.well-known/acme-challenge/"

// HTTPHandler returns the handler for port 80.
//
// In ACME mode it answers http-01 challenges under /.well-known/acme-challenge/ through
// autocert, which from then on may use http-01 as well as tls-alpn-01, and redirects every
// other request to the same path and query over HTTPS with 308 Permanent Redirect, keeping the
// method and body (RFC 9110 §15.4.9). The redirect goes to the host the request named, without
// its port, so to port 443. Requests for hosts outside Domains get 404 and no redirect, so the
// node neither advertises nor vouches for names it does not serve. fallback is not used.
//
// In local mode it serves fallback when fallback is non-nil (plain HTTP, for loopback use) and
// redirects any host to HTTPS on port 443 otherwise.
//
// A Host header that is neither a DNS host name nor an IP address, and a request target that
// is not a path (such as "*"), get 400 instead of a redirect.
func (m *Manager) HTTPHandler(fallback http.Handler) http.Handler {
	return m.HTTPHandlerWith(fallback, nil)
}

// HTTPHandlerWith is HTTPHandler that, in ACME mode, also redirects to HTTPS the hosts a valid
// certificate of table covers (the node serves them over HTTPS too), rather than answering
// them 404. Their ACME challenges are not autocert's: the caller answers them before this
// handler. A nil table is HTTPHandler.
func (m *Manager) HTTPHandlerWith(fallback http.Handler, table Table) http.Handler {
	h := &httpHandler{domains: m.domains, table: table}
	if m.acme != nil {
		h.challenge = m.acme.HTTPHandler(nil)
	} else {
		h.fallback = fallback
	}
	return h
}

var _ http.Handler = (*httpHandler)(nil)

type httpHandler struct {
	domains   map[string]bool // empty in local mode
	table     Table           // hosts also redirected in ACME mode; nil: none
	challenge http.Handler    // autocert's http-01 responder; nil in local mode
	fallback  http.Handler    // local mode only; nil to redirect
}

func (h *httpHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.fallback != nil {
		h.fallback.ServeHTTP(w, r)
		return
	}
	host, ok := requestHost(r.Host)
	if !ok {
		http.Error(w, "invalid Host header", http.StatusBadRequest)
		return
	}
	if h.challenge != nil {
		own := h.domains[host]
		if !own && (h.table == nil || h.table.Lookup(host) == nil) {
			http.NotFound(w, r)
			return
		}
		if own && strings.HasPrefix(r.URL.Path, acmeChallengePrefix) {
			// autocert checks its host policy against r.Host verbatim; give it the name
			// without port, case or trailing dot, as a CA on a non-default port would send it.
			r2 := r.WithContext(r.Context())
			r2.Host = host
			h.challenge.ServeHTTP(w, r2)
			return
		}
	}
	target, ok := httpsURL(host, r)
	if !ok {
		http.Error(w, "request target is not a path", http.StatusBadRequest)
		return
	}
	http.Redirect(w, r, target, http.StatusPermanentRedirect)
}

// requestHost returns the host named by a Host header without its port, lowercase and without
// a trailing dot, and whether it is a DNS host name or an IP address (IPv6 literals without
// brackets, in canonical form; zones are refused). Anything else must not reach a Location
// header.
func requestHost(hostport string) (string, bool) {
	h := hostport
	if host, _, err := net.SplitHostPort(hostport); err == nil {
		h = host
	} else if len(h) >= 2 && h[0] == '[' && h[len(h)-1] == ']' {
		h = h[1 : len(h)-1]
	}
	h = strings.TrimSuffix(strings.ToLower(h), ".")
	if addr, err := netip.ParseAddr(h); err == nil {
		if addr.Zone() != "" {
			return "", false
		}
		return addr.String(), true
	}
	if validHostName(h) {
		return h, true
	}
	return "", false
}

// httpsURL is the https URL for host and r's path and query, or false when r's target is not
// a path (an asterisk-form or opaque target).
func httpsURL(host string, r *http.Request) (string, bool) {
	uri := r.URL.RequestURI()
	if !strings.HasPrefix(uri, "/") {
		return "", false
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	return "https://" + host + uri, true
}
