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
// A handler that writes leaves the reading goroutine when it would wait for the peer (for
// flow-control window, or for a request body still to come) or once it has written more than
// Server.InlineLimit bytes. The connection then carries on reading on a new goroutine while
// the handler finishes on its own, its frames interleaved with those of other streams, so a
// large download does not hold up the small requests behind it. A handler that blocks on
// anything else (a lock, a remote call) holds up its connection's other streams: this server
// is for handlers that answer at once.
//
// A handler that has a body of known length to send (a file, or bytes in memory) hands it to
// the stream with SendBody (BodySender) and returns. A small one the peer's window takes at once
// is sent in line; any other stays with its stream as a Body and an offset, and the connection's
// sender, a goroutine that runs only while some stream has both a body and window, opens it,
// sends up to the window and closes it again. A stream waiting for window so holds no file and
// no goroutine; a connection sending holds a share of Server.SendMemory, and waits for one when
// all are taken.
//
// Frames are read and checked by golang.org/x/net/http2's Framer, header blocks decoded and
// encoded by its hpack package.
//
// # Bounds
//
// Every write to the socket is done without the connection's lock, with a deadline of
// SendTimeout (moved forward with each write): a peer that stops reading is closed after it,
// and a goroutine queueing a frame, resetting a stream or shutting the connection down never
// waits on that write. Per connection, pending output is one buffer being written and one
// being filled (64 KiB each), plus control frames: while a write is blocked, at most
// MaxQueuedControlFrames of them (PING and SETTINGS acks, RST_STREAM, WINDOW_UPDATE) are
// queued, and the connection is closed with ENHANCE_YOUR_CALM past it. When the reader is
// itself the blocked writer it reads nothing more, so a flood stays in the kernel's buffers
// and ends with the write's deadline.
//
// A stream with a response to send and no flow-control window is reset (CANCEL) once it has
// waited SendTimeout; when every open stream of a connection is like that and nothing else
// moved on it for as long, the connection is closed instead. Stalls are looked for four times
// per SendTimeout (or IdleTimeout, if shorter), so a stalled stream or connection is reaped
// within 1.25 times it. A connection with no open stream is closed IdleTimeout after its last
// stream ended (or after the preface), whatever else it sends: PING, SETTINGS, WINDOW_UPDATE,
// PRIORITY and unknown frames do not move the deadline. A header block may have
// MaxContinuationFrames CONTINUATION frames, empty ones included (the Framer bounds only the
// block's size); past it the connection is closed with ENHANCE_YOUR_CALM.
//
// Each limit's hits are counted in Stats (Server.Counters) and logged once per burst.
//
// # Caveats
//
//   - Response trailers and server push are not sent; "Expect: 100-continue" is not answered
//     with an interim 100 (the body is read when the handler reads it).
//   - The request's context is cancelled when the peer resets the stream or the connection
//     ends; a handler writing to a reset stream gets an error.
package h2
