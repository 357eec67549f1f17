//go:build linux || darwin || freebsd

package blobs

import (
	"errors"
	"os"
	"syscall"
)

// tryLockExclusive takes an exclusive flock(2) on f without waiting; false means another Store
// (in this process or another) holds the lock. Each os.File has its own open file description, so
// two Stores in one process exclude each other as two processes do.
func tryLockExclusive(f *os.File) (bool, error) {
	err := flock(f, syscall.LOCK_EX|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return false, nil
	}
	return err == nil, err
}

// lockShared converts (or takes) a shared flock on f, waiting for an exclusive holder (an Open
// cleaning temporary files) to finish.
func lockShared(f *os.File) error { return flock(f, syscall.LOCK_SH) }

func flock(f *os.File, how int) error {
	sc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	err = sc.Control(func(fd uintptr) {
		for {
			ferr = syscall.Flock(int(fd), how)
			if ferr != syscall.EINTR {
				return
			}
		}
	})
	if err != nil {
		return err
	}
	if ferr != nil {
		return os.NewSyscallError("flock", ferr)
	}
	return nil
}

// diskFree returns the bytes available to unprivileged users (f_bavail, not f_bfree: the blocks
// reserved for root are no use to a node that does not run as root).
func diskFree(dir string) (uint64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, os.NewSyscallError("statfs", err)
	}
	return uint64(st.Bavail) * uint64(st.Bsize), nil
}
