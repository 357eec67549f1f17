// Package h2 serves HTTP/2 (RFC 9113) over TLS to net/http handlers that answer from memory or
// local disk, as the edge does, with far less work per request than net/http's own HTTP/2
// server.
//
// net/http runs every HTTP/2 request on a goroutine of its own and passes each frame the
// handler writes to the connection's goroutine through channels; for a response of a few
// kilobytes that bookkeeping costs more than the response. Here the goroutine that reads a
// connection's frames runs each request's handler itself, and the handler's response goes
// into the connection's output buffer, which is written out once the frames already received
// have all been answered: a burst of requests is answered with one TLS write, as nginx does.
//
// A handler leaves the reading goroutine when it would wait for the peer (for flow-control
// window, or for a request body still to come) or once it has written more than
// Server.InlineLimit bytes. The connection then carries on reading on a new goroutine while
// the handler finishes on its own, its frames interleaved with those of other streams, so a
// large download does not hold up the small requests behind it. A handler that blocks on
// anything else (a lock, a remote call) holds up its connection's other streams: this server
// is for handlers that answer at once.
//
// Frames are read and checked by golang.org/x/net/http2's Framer, header blocks decoded and
// encoded by its hpack package.
//
// # Caveats
//
//   - Response trailers and server push are not sent; "Expect: 100-continue" is not answered
//     with an interim 100 (the body is read when the handler reads it).
//   - The request's context is cancelled when the peer resets the stream or the connection
//     ends; a handler writing to a reset stream gets an error.
package h2
