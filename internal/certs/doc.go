// Package certs provides the HTTPS certificates of dt's edges and redirectors.
//
// With domain names configured, a [Manager] obtains and renews certificates from an ACME server
// (RFC 8555; Let's Encrypt unless told otherwise) through golang.org/x/crypto/acme/autocert. It
// answers the tls-alpn-01 challenge (RFC 8737) inside the TLS handshake and, once
// [Manager.HTTPHandler] serves port 80, the http-01 challenge (RFC 8555 §8.3) there. Everything
// else arriving on port 80 is redirected to HTTPS with 308 Permanent Redirect (RFC 9110 §15.4.9),
// which, unlike 301, keeps the method and body.
//
// Without domain names (local use) the Manager serves a self-signed certificate for localhost,
// 127.0.0.1, ::1 and the machine's host name, generated once and kept in the cache directory so
// that a browser exception or a pinned certificate survives restarts.
//
// # Guarantees
//
//   - Certificates are requested only for the configured names: the host policy refuses every
//     other TLS server name and the port-80 handler answers other hosts with 404, so a stranger
//     cannot make a node spend the CA's rate limits (Let's Encrypt: 50 certificates per
//     registered domain and 5 duplicates per week).
//   - Issued certificates, the ACME account key and the local certificate persist in the cache
//     directory (mode 0700, keys 0600) and are reused across restarts.
//   - [Manager.Expiry] reports the NotAfter of the certificate kept for a name, so heartbeats
//     can carry it and the redirector can skip edges whose certificate is missing or expired.
//   - Nothing here contacts a network until a certificate is needed: [New] only reads and
//     writes the cache directory.
//
// # Caveats
//
// Each edge has its own name and its own ACME account; one name shared by many edges (a
// certificate cache in the replicated table with a single-issuer lock) and DNS-01 wildcards are
// not provided. No OCSP stapling: Let's Encrypt stopped running OCSP in 2025. Issuance and
// renewal run inside autocert and cannot be cancelled from outside; autocert bounds each attempt
// to five minutes.
package certs
