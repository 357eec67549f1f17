// Package netcert holds the TLS certificates a network shares through the dt table: one record
// per certificate, its private key sealed, so that one issuer obtains a certificate once and
// every edge serves it.
//
// A record lives under Key(name), name being the certificate's first DNS name
// ("certs/*.cdn.example.com"). Its private key is sealed with XChaCha20-Poly1305 under a key
// derived from the network key (HKDF-SHA256, info SealInfo), the record's table key bound as
// additional data: every node that can join the network can open it, which is the trust a CDN
// gives its edges, and nothing else can — not a disk image, a log, or a peer without the network
// key. A sealed key moved to another record's key does not open.
//
// Records are written by the issuer (a key the master granted the certificate scope, or a
// master) and read by every node; ParseAt checks everything a node can check without the network
// key, Record.Open the rest.
//
// A Store follows the records from a node's events and serves them to TLS handshakes by server
// name (exact name first, then the wildcard of its parent), so an edge serves a certificate
// renewed in the table on its next handshake, without a restart.
package netcert
