// Package issuer is the certificate issuer role: one ACME client for the whole network. It
// obtains and renews a certificate for every name the network serves and writes each into the
// table (package netcert), the private key sealed, so that every edge serves it.
//
// # Names and challenges
//
// The CDN zone (netconf.Settings.CDNZone) gets one certificate for its wildcard and apex,
// validated by DNS-01: the issuer writes the "_acme-challenge" values as challenge.DNS01
// records, which every dt dns node answers. Each site (site records, sites/<name>) gets one
// certificate for its hostnames: by DNS-01 too when every hostname lies in a zone dt's DNS
// serves (the CDN zone or a published zone), by HTTP-01 otherwise (challenge.HTTP01 records,
// which every edge answers on port 80). Before telling the CA to validate, the issuer waits
// until every authoritative DNS server answers the TXT values, or every live edge reports the
// digest of the challenge records written (heartbeat), up to a deadline.
//
// # One issuer at a time
//
// Several issuers may run; the lease record (LeaseKey) lets one act at a time. See Lease for
// why two issuers started at once end with one holder.
//
// # Renewal
//
// A certificate is renewed in the window the CA's ACME Renewal Information gives (RFC 9773),
// or when a third of its lifetime is left. Failures are retried with exponential backoff and
// jitter, a rate limit or Retry-After from the CA is respected, and the state of every
// certificate is written to the status record (StatusKey).
package issuer
