package edge

import (
	"cmp"

	"github.com/dt-cdn/dt/internal/connlimit"
	"github.com/dt-cdn/dt/internal/fdcache"
)

// openFiles returns the static.HandlerConfig.OpenFiles of an edge whose visitor connections
// are capped by maxConns and fdReserve (connlimit.Config's, zero for their defaults), under
// the process's descriptor limit: the blob files kept open between responses come out of
// what the caps leave unused, never out of the reserve. The caps count two descriptors per
// connection (its socket, and a file it may be sending), so what is left is the limit less
// the reserve and twice the connection cap; the edge keeps half of that open at most, and
// fdcache.DefaultMaxIdle. Where the caps take the whole limit (a limit below about 21,000
// with the defaults), it keeps none: every response opens its file, as without the cache. It
// returns a negative number for none.
func openFiles(maxConns, fdReserve int) int {
	limit, _, err := connlimit.DescriptorLimit()
	if err != nil || fdReserve < 0 {
		return 0 // no descriptor limit to keep within: the default
	}
	return openFilesWithin(limit, maxConns, fdReserve)
}

// openFilesWithin is openFiles under a descriptor limit, with connlimit.Budget's rule for the
// connection cap.
func openFilesWithin(limit uint64, maxConns, fdReserve int) int {
	limit = min(limit, 1<<30) // an unlimited descriptor limit is no bound
	reserve := min(uint64(cmp.Or(fdReserve, connlimit.DefaultFDReserve)), limit/4)
	if limit <= reserve+2 {
		return -1
	}
	conns := min(uint64(cmp.Or(maxConns, connlimit.DefaultMaxConns)), (limit-reserve)/2)
	left := limit - reserve - 2*conns
	if left < 2 {
		return -1
	}
	return int(min(left/2, fdcache.DefaultMaxIdle))
}
