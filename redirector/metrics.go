package redirector

// Metrics receives the Handler's counts (a Prometheus adapter lives with the command that
// registers it). Its methods are called on request goroutines, many at once, just before the
// response is written: they must be cheap, must not block, and must be safe for concurrent use.
// A Metrics that also has a method Misdirected() is called for every 421 (a Host no site
// claims); the method is not part of the interface so that implementations written before sites
// keep compiling.
type Metrics interface {
	// Redirected counts one redirect to the edge with node id node, with status code.
	Redirected(node string, code int)
	// GeoMiss counts a request whose client address the GeoIP database did not know (or failed
	// to look up). It is not called when the Handler has no database.
	GeoMiss()
	// Unavailable counts a 503: no edge was eligible.
	Unavailable()
}

// siteRedirects is the optional method of a Metrics that counts redirects per site and chosen
// edge, and why that edge (redirectReason), beside Redirected (kept out of Metrics for
// implementations written before it).
type siteRedirects interface {
	RedirectedSite(site, node, reason string)
}

// nopMetrics stands in when HandlerConfig.Metrics is nil.
type nopMetrics struct{}

func (nopMetrics) Redirected(string, int) {}
func (nopMetrics) GeoMiss()               {}
func (nopMetrics) Unavailable()           {}
