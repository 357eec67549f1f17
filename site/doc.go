// Package site defines a deploy of a static site as dt carries it: the manifest that maps each
// site path to its content, and the site rules (_redirects, _headers) that go with it. A manifest
// is built by package publish from a directory, signed as a dt record by a master, and served by
// package edge. It is the contract between them: what is valid here is what an edge serves.
//
// # Guarantees
//
//   - A manifest that [ParseManifest] accepts has passed [Manifest.Validate]: every path passes
//     [CheckPath], the chunks of a file add up to its size, every variant is smaller than the
//     content it encodes, one hash never names two sizes, and every rule is one the parsers
//     would accept. An edge may trust those facts without checking them again.
//   - One manifest has one encoding: [Manifest.Marshal] writes canonical JSON (object keys sorted,
//     times in UTC) and ParseManifest refuses any other spelling of it. So a [DeployID], the
//     SHA-256 of those bytes, names exactly one deploy, and the bytes a master signs are the bytes
//     every edge hashes.
//   - [ParseRedirects] and [ParseHeaders] accept only rules the edge can carry out safely: targets
//     are site paths or http(s) URLs (no javascript: or data:), header fields are RFC 9110
//     tokens and values, and every pattern is one [MatchRule] matches as written. Their errors
//     are [*RuleError]s naming file:line.
//   - [DecodeBlob] never allocates more than the size limit it is given for the decoded data
//     (a zstd bomb is cut off at the limit), and returns data only once it hashes to the hash it
//     claims.
//
// # Table keys
//
// A deploy lives in the dt table under three kinds of keys (see keys.go): "blob/<hex>" holds one
// blob of file data as a [BlobObject], "deploy/<hex>" holds a manifest (its canonical JSON), and
// a site's current pointer ([CurrentKeyOf]) holds the [Current] that names the deploy edges
// serve for that site. Rollback rewrites only the pointer. Blobs and deploys are shared by every
// site on the network.
//
// # Sites
//
// A network serves many sites. "sites/<name>" holds a site's [Record]: its name and the hosts
// it claims. "site/<name>/current" is its current pointer, except for the site [DefaultSite],
// whose pointer is "site/current", the one key a network of the previous release had: such a
// network's one site is the site "default", with no step by the user, and its edges go on
// following it. That site exists implicitly while "site/current" exists and "sites/default"
// does not ([ImplicitDefault]), and then claims every host no other site claims. [Hosts.Match]
// is the one rule by which every node maps a request's host to its site: exact hosts, then
// one-label wildcards, then the implicit default; two records claiming one host resolve to the
// site whose name sorts first, on every node alike.
//
// # Not covered
//
// The package does not sign anything (dt records are signed by the table), does not decide what
// a publisher sends (package publish), and does not serve requests (package edge). Paths are
// compared byte for byte: there is no Unicode normalisation, so "é" written precomposed and
// decomposed are two paths.
package site
