//go:build !linux

package tcpopt

import "syscall"

// SetCork does nothing where TCP_CORK does not exist.
func SetCork(syscall.Conn, bool) bool { return false }

// SetNotSentLowat does nothing where TCP_NOTSENT_LOWAT does not exist.
func SetNotSentLowat(syscall.Conn, int) bool { return false }
