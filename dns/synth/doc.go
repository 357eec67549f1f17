// Package synth answers DNS for the CDN zone (netconf.Settings.CDNZone) from what the table says
// rather than from records: the names of package cdnzone, made from the edges' heartbeats and
// the sites, so that adding an edge or a site needs no DNS record.
//
//	<edge>.<zone>             A/AAAA: the edge's public addresses, while it is live
//	<site>.<zone>             A/AAAA: GeoDNS, the nearest live edges serving the site's current
//	                          deploy (edgeset.SelectSite, as the redirector chooses)
//	<site>--<edge>.<zone>     A/AAAA: the edge's addresses while it is live and serves the site
//	<deploy12>--<site>.<zone> answered as <site>.<zone>: the edge decides what a preview serves
//
// A name of those forms whose site or edge the network does not have is NXDOMAIN. A name that
// exists but has no address now (its edge is not live, does not serve the site, or has no
// address of the family asked; no edge serves the site) is NODATA, with the SOA's short negative
// TTL, so resolvers ask again soon. Every other type at an existing name (CAA included) is
// NODATA: no CAA record means any CA may issue (RFC 8659 §3).
//
// # SOA and NS
//
// When a zone with the CDN zone's apex is published (dt dns-publish), its SOA and NS are the
// zone's, and every name it holds is answered from its records (glue for the name servers, a CAA
// record, anything the operator adds), the synthesised names filling in the rest. Without one,
// the SOA and NS are made from Config.NameServers: the names the zone is delegated to.
//
// # Caveats
//
// A node of an earlier release does not know the CDN zone and answers REFUSED for its names
// (it serves no zone of that apex), so delegate the zone only to upgraded DNS nodes.
package synth
