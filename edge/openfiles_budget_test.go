package edge

import (
	"testing"

	"github.com/dt-cdn/dt/internal/connlimit"
	"github.com/dt-cdn/dt/internal/fdcache"
)

// The blob files kept open fit in what the connection caps leave of the descriptor limit, and
// never in the reserve.
func TestOpenFilesWithinLimit(t *testing.T) {
	for _, tt := range []struct {
		limit             uint64
		maxConns, reserve int
		want              int
	}{
		{1 << 20, 0, 0, fdcache.DefaultMaxIdle},   // systemd's and Docker's usual limit
		{65536, 0, 0, fdcache.DefaultMaxIdle},     // 65,536 − 1,024 − 2·10,000 left
		{1024, 0, 0, -1},                          // the caps take it all: keep none
		{16384, 0, 0, -1},                         // still all: (16,384 − 1,024)/2 connections
		{22000, 0, 0, (22000 - 1024 - 20000) / 2}, // a little left: half of it
		{65536, 32000, 0, (65536 - 1024 - 2*32000) / 2},
		{65536, 0, -1, fdcache.DefaultMaxIdle},  // no reserve
		{1 << 40, 0, 0, fdcache.DefaultMaxIdle}, // unlimited
	} {
		got := openFilesWithin(tt.limit, tt.maxConns, tt.reserve)
		if got != tt.want {
			t.Errorf("limit %d, max conns %d, reserve %d: %d files, want %d", tt.limit, tt.maxConns, tt.reserve, got, tt.want)
		}
		reserve := min(uint64(max(tt.reserve, 0)), tt.limit/4)
		if tt.reserve == 0 {
			reserve = min(connlimit.DefaultFDReserve, tt.limit/4)
		}
		conns := uint64(max(tt.maxConns, connlimit.DefaultMaxConns))
		if tt.maxConns > 0 {
			conns = uint64(tt.maxConns)
		}
		conns = min(conns, (tt.limit-reserve)/2)
		if got > 0 && reserve+2*conns+uint64(got) > tt.limit {
			t.Errorf("limit %d: %d files beside %d connections eat into the reserve of %d", tt.limit, got, conns, reserve)
		}
	}
}
