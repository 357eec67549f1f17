// Package tcpopt sets the TCP socket options that the edge's HTTP servers tune, on systems
// that have them; elsewhere the calls do nothing and report false. Failing to set one is never
// an error to the caller: the connection works, only less well.
package tcpopt
