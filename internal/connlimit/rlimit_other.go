//go:build !unix

package connlimit

import "errors"

var errNoRlimit = errors.New("connlimit: no descriptor limit on this system")

// DescriptorLimit reports that the system has no RLIMIT_NOFILE: the total cap stands alone.
func DescriptorLimit() (soft, hard uint64, err error) { return 0, 0, errNoRlimit }

// RaiseDescriptorLimit does nothing where there is no RLIMIT_NOFILE.
func RaiseDescriptorLimit() (soft, hard uint64, err error) { return 0, 0, errNoRlimit }
