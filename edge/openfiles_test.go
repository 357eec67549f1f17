package edge

import (
	"bytes"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/dt-cdn/dt/blobs"
	"github.com/dt-cdn/dt/internal/testkit/promtest"
	"github.com/dt-cdn/dt/internal/testkit/wait"
	"github.com/dt-cdn/dt/site"
	"github.com/dt-cdn/dt/static"
)

// TestEdgeOpenFilesMetrics: a file sent from disk over plain HTTP/1.1 is opened once and then
// sent from the blob file kept open, as dt_edge_open_files_* count. The connection cap is
// low enough for the descriptor limit to leave room for open files (see openFiles).
func TestEdgeOpenFilesMetrics(t *testing.T) {
	se := startSitesEdge(t, func(c *serviceConfig) { c.MaxConns = 100 })
	if n := openFiles(100, 0); n <= 0 {
		t.Fatalf("openFiles(100, 0) = %d: the descriptor limit leaves no room at 100 connections", n)
	}
	d := makeSiteDeploy(t, "default", "v1")
	big := bytes.Repeat([]byte("0123456789abcdef"), static.DefaultMaxMemoryFile/16+1)
	h := blobs.Sum(big)
	d.m.Files["/big.bin"] = site.File{Hash: h, Size: int64(len(big)), Type: "application/octet-stream"}
	d.objects[h], _ = site.EncodeBlob(big)
	var err error
	if d.id, err = d.m.ID(); err != nil {
		t.Fatal(err)
	}
	publishSite(t, se.master, site.DefaultSite, nil, d, true)
	wait.For(t, 10*time.Second, func() error {
		if r := se.fetch(t, "www.example.com", "", "/big.bin"); r.status != http.StatusOK || r.body != string(big) {
			return fmt.Errorf("/big.bin: status %d, %d bytes", r.status, len(r.body))
		}
		return nil
	})
	misses := promtest.Value(t, se.reg, "dt_edge_open_files_misses_total")
	hits := promtest.Value(t, se.reg, "dt_edge_open_files_hits_total")
	if r := se.fetch(t, "www.example.com", "", "/big.bin"); r.body != string(big) {
		t.Fatalf("/big.bin again: status %d, %d bytes", r.status, len(r.body))
	}
	if got := promtest.Value(t, se.reg, "dt_edge_open_files_hits_total"); got != hits+1 || misses != 1 {
		t.Errorf("dt_edge_open_files_hits_total went from %v to %v, misses_total %v: want one more hit, one miss", hits, got, misses)
	}
	if got := promtest.Value(t, se.reg, "dt_edge_open_files"); got != 1 {
		t.Errorf("dt_edge_open_files = %v, want 1", got)
	}
	if got := promtest.Value(t, se.reg, "dt_edge_open_files_evicted_total"); got != 0 {
		t.Errorf("dt_edge_open_files_evicted_total = %v, want 0", got)
	}
}
