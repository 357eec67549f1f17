// Package static serves one deploy's files over HTTP with correct HTTP semantics, as a mature
// static web server does: the handler of a dt edge, apart from the node that follows deploys.
//
// A deploy is a site.Manifest (path → content hash, type, precompressed variants, _redirects
// and _headers rules) whose file bytes are blobs in a content-addressed store. NewSite turns a
// manifest and its blob source into a Site: every response header that does not depend on the
// request is computed there, once per deploy, and small files are read into memory, so the
// request path does no formatting and, for small files, no system call but the socket write.
// Over plain HTTP/1.1 (internal/h1), bodies from HandlerConfig.SendfileMin up go by sendfile(2)
// at an offset from blob files kept open between responses (package fdcache), with the header
// in the same segments: two system calls per response and no copy of the body. There, too, a
// 200 with a whole representation sends its fixed fields as one h1.HeaderBlock, made at the
// representation's first such response and kept by the Site, instead of filling a header map:
// the same fields with the same values, with no per-response map work (see headFor).
// A Handler serves one Site at a time and switches atomically (Handler.SetSite), or many, each on
// its hosts, picked per request by Host and TLS server name (Handler.SetSites, Sites). It runs under
// any http.Server; under dt's own servers (package internal/httpserve, which picks
// internal/h1, internal/h2 or net/http) it sends bodies with sendfile and one write per
// response where it can.
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
// The handler does not proxy: _redirects rules with a domain source or an absolute rewrite
// target are ignored. Range requests are served on the raw content only (see Handler). Blobs on
// disk are not re-hashed per request; the blob store verifies them on write and on demand. The
// handler has no timeouts or connection limits of its own: the server running it bounds
// connections (see internal/httpserve).
package static
