//go:build !(linux || darwin || freebsd)

package blobs

import (
	"errors"
	"os"
)

// tryLockExclusive cannot lock here: every Open cleans DIR/tmp, so only one Store may use a
// directory at a time (see the package Caveats).
func tryLockExclusive(*os.File) (bool, error) { return true, nil }

func lockShared(*os.File) error { return nil }

func diskFree(string) (uint64, error) { return 0, errors.ErrUnsupported }
