//go:build unix

package connlimit

import (
	"fmt"
	"syscall"
)

// DescriptorLimit returns the process's soft and hard RLIMIT_NOFILE.
func DescriptorLimit() (soft, hard uint64, err error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, 0, fmt.Errorf("connlimit: getrlimit: %w", err)
	}
	return uint64(lim.Cur), uint64(lim.Max), nil
}

// RaiseDescriptorLimit raises the soft RLIMIT_NOFILE towards the hard limit, and returns both
// as they then are. Go's runtime already sets the soft limit to one below the hard limit at
// start on every Unix (go.dev/issue/46279) and restores the original for processes it starts;
// calling Setrlimit would cancel that restoring, so RaiseDescriptorLimit changes nothing when
// the soft limit is already there, and acts only where the runtime did not (a hard limit
// lowered after start, a future runtime that no longer does it).
func RaiseDescriptorLimit() (soft, hard uint64, err error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, 0, fmt.Errorf("connlimit: getrlimit: %w", err)
	}
	if lim.Max > 0 && lim.Cur < lim.Max-1 {
		want := lim
		want.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err != nil {
			// macOS refuses a soft limit past kern.maxfilesperproc; the runtime's own raise
			// handles that, so the limit stays where it was.
			return uint64(lim.Cur), uint64(lim.Max), fmt.Errorf("connlimit: setrlimit: %w", err)
		}
		lim = want
	}
	return uint64(lim.Cur), uint64(lim.Max), nil
}
