// Package httpserve chooses and runs the HTTP servers of dt's visitor listeners, for the edge
// and the redirector alike: one Config says which server speaks each protocol and how long a
// connection may take, and Server.Serve runs it on a listener until its context ends.
//
// Plain HTTP/1.x is served by package internal/h1 (one write per response, no goroutine per
// request, no buffer while idle) or by net/http's server; TLS is negotiated by crypto/tls with
// HTTP/2 (package internal/h2, or net/http's) and HTTP/1.1 offered by ALPN. Every connection
// is bounded the same way whichever server runs it: ReadHeaderTimeout while a request's headers
// or a TLS handshake trickle in, IdleTimeout between requests, SendTimeout while a write makes
// no progress (nginx's send_timeout, by package internal/sendconn on net/http's and every TLS
// connection, by h1 and h2 themselves on theirs), MaxHeaderBytes for the request's header
// section, and caps on connections at accept (package internal/connlimit). Every connection's
// socket holds a bounded amount unsent (TCP_NOTSENT_LOWAT, by sendconn.ConnContext), and a
// handler can cork net/http's connections for a large response (sendconn.Cork); h1 corks its
// own.
//
// What is served (a static site, redirects, a dashboard) is the Config's Handler; httpserve
// adds no routes and writes no responses of its own.
package httpserve
