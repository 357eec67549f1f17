package proc

import "syscall"

// sysProcAttr makes the kernel kill a child when the test process dies, so a crashed or killed
// test leaves no process behind.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
