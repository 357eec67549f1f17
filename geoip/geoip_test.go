package geoip

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/dt-cdn/dt/internal/testkit/mmdb"
	"github.com/dt-cdn/dt/internal/testkit/syncbuf"
)

func writeFile(t testing.TB, path string, data []byte, mtime time.Time) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	// The watcher compares size and modification time; set the time so that two writes within
	// the file system's timestamp granularity still differ.
	if err := os.Chtimes(path, mtime, mtime); err != nil {
		t.Fatal(err)
	}
}

func mustLookup(t testing.TB, g *DB, ip string) *Record {
	t.Helper()
	rec, err := g.Lookup(netip.MustParseAddr(ip))
	if err != nil {
		t.Fatalf("lookup %s: %v", ip, err)
	}
	return rec
}

func TestGeoDBLookupLayouts(t *testing.T) {
	for _, tt := range []struct {
		name   string
		layout mmdb.Layout
		radius uint16
		tol    float64 // float32 coordinates in DB-IP's layout
	}{
		{"GeoLite2-City", mmdb.LayoutMaxMind, 20, 0},
		{"DB-IP lite", mmdb.LayoutDBIP, 0, 1e-5},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "db.mmdb")
			writeFile(t, path, mmdb.Build(t, mmdb.Nets(), tt.layout), testNow)
			g, err := Open(path, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer g.Close()
			for _, ip := range []string{"145.100.200.1", "2001:610:1::1", "::ffff:145.100.200.1"} {
				rec := mustLookup(t, g, ip)
				if rec == nil || rec.Country != "NL" || rec.Continent != "EU" || !rec.HasLocation ||
					math.Abs(rec.Lat-52.37) > tt.tol || math.Abs(rec.Lon-4.89) > tt.tol || rec.AccuracyRadius != tt.radius {
					t.Errorf("%s: %+v", ip, rec)
				}
			}
			if rec := mustLookup(t, g, "145.100.200.1"); rec.Network != netip.MustParsePrefix("145.100.0.0/16") {
				t.Errorf("network %v", rec.Network)
			}
			if rec := mustLookup(t, g, "90.0.0.1"); rec == nil || rec.Country != "FR" || rec.HasLocation {
				t.Errorf("country-level record: %+v", rec)
			}
			if rec := mustLookup(t, g, "5.5.0.1"); rec == nil || rec.Country != "AT" {
				t.Errorf("registered-country record: %+v", rec)
			}
			for _, ip := range []string{"8.8.8.8", "2001:4860::1", "127.0.0.1", "fe80::1%eth0"} {
				if rec := mustLookup(t, g, ip); rec != nil {
					t.Errorf("%s: want no record, got %+v", ip, rec)
				}
			}
		})
	}
}

func TestGeoDBIPv4Only(t *testing.T) {
	tree := mmdb.BuildV4(t)
	path := filepath.Join(t.TempDir(), "v4.mmdb")
	writeFile(t, path, tree, testNow)
	g, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if rec := mustLookup(t, g, "145.100.0.1"); rec == nil || rec.Country != "NL" {
		t.Errorf("IPv4 in an IPv4 database: %+v", rec)
	}
	if rec := mustLookup(t, g, "2001:610::1"); rec != nil {
		t.Errorf("IPv6 in an IPv4 database: %+v", rec)
	}
}

func TestOpenGeoDBRefusesBadFiles(t *testing.T) {
	good := mmdb.Build(t, mmdb.Nets(), mmdb.LayoutMaxMind)
	dir := t.TempDir()
	for name, data := range map[string][]byte{
		"empty":     {},
		"garbage":   bytes.Repeat([]byte("not a database "), 1000),
		"truncated": good[:len(good)/2],
		"tree only": good[:len(good)-200],
	} {
		path := filepath.Join(dir, name)
		writeFile(t, path, data, testNow)
		if g, err := Open(path, Options{}); !errors.Is(err, ErrBadDB) {
			t.Errorf("%s: got %v, %v; want ErrBadDB", name, g, err)
		}
	}
	if _, err := Open(filepath.Join(dir, "missing"), Options{}); !errors.Is(err, ErrBadDB) {
		t.Errorf("missing file: %v", err)
	}
}

// movedNets is mmdb.Nets with the Dutch network moved to Belgium: a second database to reload.
func movedNets() []mmdb.Net {
	nets := mmdb.Nets()
	for i := range nets {
		if nets[i].Country == "NL" {
			nets[i].Country, nets[i].Lat, nets[i].Lon = "BE", 50.85, 4.35
		}
	}
	return nets
}

func TestGeoDBReloadKeepsOldOnCorruptFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "city.mmdb")
	writeFile(t, path, mmdb.Build(t, mmdb.Nets(), mmdb.LayoutMaxMind), testNow)
	var logs syncbuf.Buffer
	g, err := Open(path, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()

	good := mmdb.Build(t, movedNets(), mmdb.LayoutMaxMind)
	writeFile(t, path, good[:len(good)/3], testNow.Add(time.Minute)) // a copy cut short
	if err := g.Reload(); !errors.Is(err, ErrBadDB) {
		t.Fatalf("reload of a corrupt file: %v", err)
	}
	if rec := mustLookup(t, g, "145.100.0.1"); rec == nil || rec.Country != "NL" {
		t.Fatalf("after a bad reload: %+v, want the old NL record", rec)
	}
	if !strings.Contains(logs.String(), "keeping the previous one") {
		t.Errorf("bad reload not logged: %q", logs.String())
	}

	writeFile(t, path, good, testNow.Add(2*time.Minute))
	if err := g.Reload(); err != nil {
		t.Fatal(err)
	}
	if rec := mustLookup(t, g, "145.100.0.1"); rec == nil || rec.Country != "BE" {
		t.Fatalf("after a good reload: %+v, want BE", rec)
	}
}

// TestGeoDBWatch follows the file through a corrupt copy and a good one, on fake time.
func TestGeoDBWatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "city.mmdb")
		writeFile(t, path, mmdb.Build(t, mmdb.Nets(), mmdb.LayoutMaxMind), testNow)
		g, err := Open(path, Options{PollInterval: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		var wg sync.WaitGroup
		wg.Go(func() {
			if err := g.Watch(ctx); err != nil {
				t.Errorf("Watch: %v", err)
			}
		})
		poll := func() {
			time.Sleep(time.Second + time.Millisecond)
			synctest.Wait() // the watcher is back waiting on its ticker: its check is done
		}

		writeFile(t, path, []byte("garbage"), testNow.Add(time.Minute))
		poll()
		if rec := mustLookup(t, g, "145.100.0.1"); rec == nil || rec.Country != "NL" {
			t.Fatalf("after a corrupt file: %+v, want the old NL record", rec)
		}
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
		poll()
		if rec := mustLookup(t, g, "145.100.0.1"); rec == nil || rec.Country != "NL" {
			t.Fatalf("with the file gone: %+v, want the old NL record", rec)
		}
		writeFile(t, path, mmdb.Build(t, movedNets(), mmdb.LayoutMaxMind), testNow.Add(2*time.Minute))
		poll()
		if rec := mustLookup(t, g, "145.100.0.1"); rec == nil || rec.Country != "BE" {
			t.Fatalf("after a good file: %+v, want BE", rec)
		}

		cancel()
		wg.Wait()
		// Close also ends a Watch.
		wg.Go(func() { _ = g.Watch(t.Context()) })
		synctest.Wait()
		g.Close()
		wg.Wait()
	})
}

// TestGeoDBLookupsDuringReload runs lookups on several goroutines while the database is swapped
// back and forth: each sees one database whole, never an error. Run with -race.
func TestGeoDBLookupsDuringReload(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "city.mmdb")
	dbs := [][]byte{mmdb.Build(t, mmdb.Nets(), mmdb.LayoutMaxMind), mmdb.Build(t, movedNets(), mmdb.LayoutMaxMind)}
	writeFile(t, path, dbs[0], testNow)
	g, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			ip := netip.MustParseAddr("145.100.9.9")
			for {
				select {
				case <-stop:
					return
				default:
				}
				rec, err := g.Lookup(ip)
				if err != nil || rec == nil || (rec.Country != "NL" && rec.Country != "BE") {
					t.Errorf("lookup during reload: %+v, %v", rec, err)
					return
				}
			}
		})
	}
	for i := range 20 {
		// Renamed into place, as database updaters do.
		tmp := filepath.Join(dir, "next")
		writeFile(t, tmp, dbs[(i+1)%2], testNow.Add(time.Duration(i+1)*time.Minute))
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
		if err := g.Reload(); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
}

func TestGeoDBClose(t *testing.T) {
	g := openTestDB(t)
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	if err := g.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := g.Lookup(netip.MustParseAddr("145.100.0.1")); !errors.Is(err, ErrClosed) {
		t.Errorf("lookup after Close: %v", err)
	}
	if err := g.Reload(); !errors.Is(err, ErrClosed) {
		t.Errorf("reload after Close: %v", err)
	}
	var none *DB
	if rec, err := none.Lookup(netip.MustParseAddr("145.100.0.1")); rec != nil || err != nil {
		t.Errorf("nil DB: %v, %v", rec, err)
	}
}

// testNow is the modification time of the test files: any fixed time will do.
var testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// openTestDB opens a database of mmdb.Nets.
func openTestDB(t testing.TB) *DB {
	t.Helper()
	g, err := Open(mmdb.File(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	return g
}
