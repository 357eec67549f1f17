//go:build !linux

package proc

import "syscall"

// sysProcAttr: only Linux can tie a child's life to its parent's; elsewhere the test's cleanup
// alone stops the children.
func sysProcAttr() *syscall.SysProcAttr { return nil }
