// Package h1 serves HTTP/1.1 and HTTP/1.0 (RFC 9112) to net/http handlers that answer at once
// from memory or local disk, as the edge does, with less work per request than net/http's own
// server.
//
// Requests are read by net/http's parser (http.ReadRequest: the request line, the header
// section, and the body's framing with its checks against request smuggling), then checked as
// net/http's server checks them: HTTP/1.x only, one valid Host in HTTP/1.1, valid field
// names and values, a bounded header section, Expect. What is this package's own is the
// connection loop and the response path, where net/http spends most of its time on a small
// response, and a shortcut for the common request:
//
//   - A request head that has arrived whole and has the shape of nearly every request (a
//     method other than CONNECT, an origin-form target, HTTP/1.0 or 1.1, well-formed fields,
//     no body) is parsed where it lies in the read buffer, into the request that
//     http.ReadRequest and the checks would give, with a third of the allocations for a
//     browser's request. A head of any other shape, or one that would be refused, goes to
//     http.ReadRequest on the same bytes; fuzz tests hold the two equal.
//   - The status line and header fields go straight into the connection's output buffer, in
//     the handler's map order (net/http sorts them; HTTP gives order no meaning between
//     fields of different names), with a Date value formatted once a second and written into
//     its place when the output leaves, from the clock reading that sets the write deadline. A
//     response whose length the handler gives leaves in one write, its body alongside the
//     header (writev) when it does not fit the buffer.
//   - A handler that sends the same fields with many responses may serialize them once into a
//     HeaderBlock, checked once as the header map's fields are checked per response, and
//     hand it over with the body's length (HeaderBlockWriter): the block is copied into the
//     output after the map's fields, and the map, left empty, costs nothing to write.
//   - Output is written when the connection would otherwise wait for input, so a burst of
//     pipelined requests is answered with one write.
//   - A request parsed in place costs its head as a string, its header map, and one object
//     holding the request, its URL and its first field values. The response writer's state and
//     header map are reused from one request to the next (and pooled between connections);
//     the handler gets a 16-byte handle on them, valid until it returns: a writer kept past
//     that writes nothing (ErrHandlerReturned) rather than into a later response.
//   - The handler runs on the connection's goroutine and nothing else runs per request: there
//     is no background read to spot a client that went away while its request is served, so a
//     request's context is cancelled when its connection ends, not before.
//   - Read and write deadlines slide with progress but are only moved when they would be off
//     by more than an eighth of their timeout, not on every request. The wait for the next
//     request sets its deadline only once the socket is found empty, and a request head that
//     arrives whole starts no header timeout: a keep-alive request whose head is there when it
//     is looked for reads the clock once, for its response's write.
//   - A connection waiting for its next request holds no buffer: the read, output and stage
//     buffers come from pools when a request arrives and go back once its response is written
//     and nothing more is buffered (on a socket, once the socket is found empty: a request
//     already there is read with the same buffers). On a socket (a *net.TCPConn, or a wrapper that embeds one
//     and gives it by NetConn, as the connection caps' does) the wait is on the runtime's
//     poller, with a read into a pooled buffer only once the socket is readable: an idle
//     keep-alive connection costs about 2 KiB of heap and its goroutine's stack, not the 20 KiB
//     of buffers. Such a wrapper's own Read is bypassed for that first read.
//   - A large body goes out in steps of sendStep bytes, each under a fresh write deadline, so
//     that SendTimeout bounds progress, not the whole transfer; a file body (a handler's
//     io.Copy from an *os.File) by the connection's ReadFrom, which is sendfile(2) on TCP.
//
// # Caveats
//
//   - No Hijack, no response trailers, no h2c upgrade; a 101 response ends the connection.
//   - A request target in absolute form ("GET http://example.com/ HTTP/1.1", which proxies
//     send) stands for the Host field, which http.ReadRequest drops unseen: such a request is
//     not refused for a missing or malformed Host, as net/http's server would refuse it.
//   - The server does not negotiate TLS: over a *tls.Conn it speaks HTTP/1.x only.
package h1
