// Package cdnzone names what a network serves under its CDN zone (netconf.Settings.CDNZone), for
// the DNS nodes that answer the names, the edges that serve them and the redirector that sends
// visitors to them:
//
//	<edge>.<zone>             the edge: its public addresses
//	<site>.<zone>             the site, on the nearest live edges that serve it (GeoDNS)
//	<site>--<edge>.<zone>     the site on that one edge: the redirector's target
//	<deploy12>--<site>.<zone> a preview: the site's kept deploy whose id starts with those
//	                          12 hex digits
//
// Every name is one label under the zone, so the one wildcard certificate *.<zone> covers them
// all, on every edge, and a new edge or site needs neither a DNS record nor a certificate.
//
// # Edge labels
//
// An edge's label is the Name from its heartbeat, lower-cased, when that is a DNS label without
// "--" and not of the derived form; otherwise, and for every edge of a network whose Name another
// edge also has, it is the label derived from the node id, "e-" and the id's first 12 hex
// digits. The derived label always names its edge, whatever its Name, so it is the stable one
// to use in configuration. Two edges of one Name both lose it rather than one winning by an
// order other nodes may not share.
//
// # One label
//
// "<x>.<zone>" is a site when a site named x exists, else an edge: a site shadows an edge of
// the same Name, which is still reached by its derived label. "<a>--<b>.<zone>" is a preview
// when a is 12 hex digits, else a site on an edge.
package cdnzone
