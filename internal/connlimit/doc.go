// Package connlimit caps the connections a server accepts: in total, and per client address
// (an IPv4 address, or an IPv6 /64, which is what one subscriber or one host usually holds).
// It is nginx's limit_conn and worker_connections at the socket: a connection past a cap is
// closed at accept, with a reset, before any TLS handshake or read, and never reaches the
// server; the accept loop does not wait on it.
//
// A Limiter is shared by the listeners it wraps (an edge's HTTP and HTTPS listeners draw on one
// total). A connection's slot is given back when the server closes it, once however often Close
// is called. Accepted TCP connections keep *net.TCPConn's fast paths (sendfile by ReadFrom,
// writev through net.Buffers, SyscallConn for socket options); NetConn returns the connection
// underneath.
//
// The total is also bounded by the process's descriptor limit (RLIMIT_NOFILE), less a reserve
// that visitors cannot take, so that a flood of visitors never leaves a node without the
// descriptors its peer links, files and database need (see Budget).
//
// connlimit does not rate-limit new connections, and does not bound what an accepted connection
// does: timeouts and per-connection limits belong to the server.
package connlimit
