// Package edge serves a dt deploy to visitors over HTTP: the part of `dt edge` that answers
// requests, as correctly as a mature static web server.
//
// A deploy is a site.Manifest (path → content hash, type, precompressed variants, _redirects
// and _headers rules) whose file bytes are blobs in a content-addressed store. NewSite turns a
// manifest and its blob source into a Site: every response header that does not depend on the
// request is computed there, once per deploy, and small files are read into memory, so the
// request path does no formatting and, for small files, no system call but the socket write.
// A Handler serves one Site at a time and switches atomically (Handler.SetSite); a Server runs
// the Handler on a listener: plain HTTP/1.x by package internal/h1, or TLS with HTTP/2 by
// package internal/h2 and HTTP/1.1 by net/http.
//
// # Guarantees
//
//   - Only paths of the manifest are served: no filesystem walk, no directory listing, no
//     dotfiles (but /.well-known), no path spelled two ways (see Handler for the path rules).
//   - A response comes entirely from one deploy: its headers, validators and every byte of its
//     body, whatever switches happen while it is sent.
//   - Strong ETags are content hashes, identical on every edge; Last-Modified is the deploy
//     time. Conditional and range requests, content negotiation, HEAD, OPTIONS and 405 follow
//     RFC 9110; 304s carry what RFC 9110 §15.4.5 requires (ETag, Cache-Control, Vary).
//   - Bytes held in memory were verified against their hash when loaded; NewSite refuses a
//     deploy whose blobs are not all present with their manifest sizes.
//   - Errors reach clients as a status and its name only; causes go to the log.
//
// # Caveats
//
// The edge does not proxy: _redirects rules with a domain source or an absolute rewrite target
// are ignored. Range requests are served on the raw content only (see Handler). Blobs on disk
// are not re-hashed per request; the blob store verifies them on write and on demand.
package edge
