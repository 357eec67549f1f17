//go:build !linux

package edge

import "net"

// setCork does nothing where TCP_CORK does not exist.
func setCork(*net.TCPConn, bool) bool { return false }

// setNotSentLowat does nothing where TCP_NOTSENT_LOWAT does not exist.
func setNotSentLowat(*net.TCPConn, int) {}
