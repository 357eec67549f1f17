package geoip

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oschwald/maxminddb-golang/v2"
)

// Record is what a GeoIP database knows of an address.
type Record struct {
	// Country is the ISO 3166-1 alpha-2 code ("NL"); the registered country when the database
	// has no country for the address. Empty when unknown.
	Country string `json:"country,omitempty"`
	// Continent is the two-letter continent code ("EU", "NA", …). Empty when unknown.
	Continent string `json:"continent,omitempty"`
	// Lat and Lon are in degrees; valid only when HasLocation. Country-level databases have none.
	Lat         float64 `json:"lat"`
	Lon         float64 `json:"lon"`
	HasLocation bool    `json:"has_location"`
	// AccuracyRadius is the database's radius of confidence around Lat, Lon in km; 0 when the
	// database does not give one (DB-IP lite).
	AccuracyRadius uint16 `json:"accuracy_radius_km,omitempty"`
	// Network is the database network the address fell in.
	Network netip.Prefix `json:"network,omitzero"`
}

// Locator finds where an address is. *DB implements it; its users (the redirector, GeoDNS, an
// edge placing itself) take the interface so that other sources can stand in. Lookup returns nil and no error for an address it knows nothing of,
// and is called from many goroutines at once.
type Locator interface {
	Lookup(ip netip.Addr) (*Record, error)
}

var _ Locator = (*DB)(nil)

// MaxFileSize bounds the database file read into memory. GeoLite2-City is about 60 MB and
// DB-IP's city lite about 130 MB; a file beyond this is a mistake, not a database.
const MaxFileSize = 1 << 30

// Options configures Open. The zero value gives the defaults stated per field.
type Options struct {
	// Logger receives reloads (Info) and files that failed to load (Warn). Nil discards.
	Logger *slog.Logger
	// PollInterval is how often Watch looks at the file's size and modification time: a shorter
	// one notices a new file sooner for one stat call more per interval. Zero: DefaultPollInterval.
	PollInterval time.Duration
}

// DefaultPollInterval is Options.PollInterval's default: databases are replaced weekly at most,
// so a few seconds' delay is unnoticeable, and a stat call every 5 s costs nothing.
const DefaultPollInterval = 5 * time.Second

// DB is a MaxMind-format GeoIP database (GeoLite2-City, GeoIP2-City, GeoLite2-Country,
// DB-IP lite) that can be replaced while in use. It is safe for concurrent use: lookups go on
// during a reload and each sees either the old or the new database, whole.
//
// The file is read into memory rather than mapped: a database copied over in place (instead of
// renamed into place) could otherwise change, or vanish, under running lookups, and the reader's
// Close could not be ordered against them. A replaced database is left to the garbage collector
// once the last lookup on it returns. Every file is verified (maxminddb's Verify) before it
// serves, which for a city database takes a moment of CPU per load.
type DB struct {
	path string
	log  *slog.Logger
	poll time.Duration

	cur atomic.Pointer[dbFile] // the database lookups use; nil after Close

	mu   sync.Mutex    // serialises loads and Close
	seen fileStamp     // guarded by mu: the file last tried, good or bad
	done chan struct{} // closed by Close
}

// dbFile is one loaded database.
type dbFile struct {
	r        *maxminddb.Reader
	ipv4Only bool
}

// fileStamp is what the watcher compares to notice a new file.
type fileStamp struct {
	size  int64
	mtime time.Time
}

// Open loads the database at path. It fails with ErrBadDB (wrapped with the cause) when
// the file cannot be used. It starts nothing: call Watch to follow changes to the file, Reload
// on SIGHUP.
func Open(path string, opts Options) (*DB, error) {
	g := &DB{path: path, log: opts.Logger, poll: opts.PollInterval, done: make(chan struct{})}
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
	if g.poll <= 0 {
		g.poll = DefaultPollInterval
	}
	f, stamp, err := loadFile(path)
	if err != nil {
		return nil, err
	}
	g.seen = stamp
	g.cur.Store(f)
	return g, nil
}

// Lookup returns the record for ip, or nil and no error when the database has none (or only an
// empty one). IPv4-mapped IPv6 addresses are looked up as IPv4. A nil *DB knows nothing.
func (g *DB) Lookup(ip netip.Addr) (*Record, error) {
	if g == nil {
		return nil, nil
	}
	f := g.cur.Load()
	if f == nil {
		return nil, ErrClosed
	}
	return f.lookup(ip)
}

// Reload reads the file again and, if it is a good database, swaps it in. On failure the
// previous database stays in service, the failure is logged, and the error is returned.
func (g *DB) Reload() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.reloadLocked()
}

func (g *DB) reloadLocked() error {
	if g.cur.Load() == nil {
		return ErrClosed
	}
	f, stamp, err := loadFile(g.path)
	if !errors.Is(err, ErrChanged) {
		g.seen = stamp // a bad file is not retried until it changes again; a changing one is
	}
	if errors.Is(err, ErrChanged) {
		g.log.Debug("GeoIP database file still changing; keeping the previous one", "path", g.path)
		return err
	}
	if err != nil {
		g.log.Warn("GeoIP database not loaded; keeping the previous one", "path", g.path, "err", err)
		return err
	}
	g.cur.Store(f)
	g.log.Info("GeoIP database loaded", "path", g.path, "type", f.r.Metadata.DatabaseType,
		"built", f.r.Metadata.BuildTime())
	return nil
}

// Watch polls the file's size and modification time every PollInterval and reloads it when they
// change, until ctx ends or the DB is closed; it then returns nil. Run it on a goroutine the
// caller waits for. A file that disappears (mid-replace) keeps the loaded database in service.
func (g *DB) Watch(ctx context.Context) error {
	tick := time.NewTicker(g.poll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-g.done:
			return nil
		case <-tick.C:
			g.checkFile()
		}
	}
}

// checkFile reloads the file if its stamp differs from the last one tried.
func (g *DB) checkFile() {
	st, err := os.Stat(g.path)
	g.mu.Lock()
	defer g.mu.Unlock()
	if err != nil {
		if g.seen != (fileStamp{}) {
			g.log.Warn("GeoIP database file unavailable; keeping the loaded one", "path", g.path, "err", err)
			g.seen = fileStamp{}
		}
		return
	}
	if stampOf(st) == g.seen {
		return
	}
	_ = g.reloadLocked() // logged there
}

// Close stops Watch and makes later lookups fail with ErrClosed. Lookups already running
// finish on the database they started with. Close is safe to call more than once.
func (g *DB) Close() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.cur.Swap(nil) != nil {
		close(g.done)
	}
	return nil
}

func stampOf(st os.FileInfo) fileStamp { return fileStamp{size: st.Size(), mtime: st.ModTime()} }

// loadFile reads, opens and verifies the database at path. It returns the stamp of the file it
// read, also on failure, so that the watcher does not retry a bad file until it changes.
func loadFile(path string) (*dbFile, fileStamp, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fileStamp{}, fmt.Errorf("%w: %w", ErrBadDB, err)
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		return nil, fileStamp{}, fmt.Errorf("%w: %w", ErrBadDB, err)
	}
	stamp := stampOf(st)
	if st.Size() > MaxFileSize {
		return nil, stamp, fmt.Errorf("%w: %s: %d bytes, over %d", ErrBadDB, path, st.Size(), MaxFileSize)
	}
	data, err := io.ReadAll(io.LimitReader(fh, MaxFileSize+1))
	if err != nil {
		return nil, stamp, fmt.Errorf("%w: read %s: %w", ErrBadDB, path, err)
	}
	// The file was not locked: compare before and after so that a copy in progress is not
	// mistaken for a corrupt database (and is retried rather than remembered as bad).
	if after, err := os.Stat(path); err != nil || stampOf(after) != stamp || int64(len(data)) != stamp.size {
		return nil, stamp, fmt.Errorf("%w: %s", ErrChanged, path)
	}
	f, err := openBytes(data)
	if err != nil {
		return nil, stamp, fmt.Errorf("%w: %s: %w", ErrBadDB, path, err)
	}
	return f, stamp, nil
}

// openBytes opens and verifies a database held in memory.
func openBytes(data []byte) (*dbFile, error) {
	r, err := maxminddb.OpenBytes(data)
	if err != nil {
		return nil, err
	}
	// Verify walks the whole search tree and data section: a truncated or garbled file fails
	// here, before it serves, rather than at some later lookup.
	if err := r.Verify(); err != nil {
		return nil, err
	}
	v := r.Metadata.IPVersion
	if v != 4 && v != 6 {
		return nil, fmt.Errorf("ip_version %d", v)
	}
	return &dbFile{r: r, ipv4Only: v == 4}, nil
}

// mmdbRecord is the part of a record that Lookup reads. GeoLite2/GeoIP2 City and Country and
// DB-IP's lite databases share these paths; fields a database lacks stay at their zero value (the
// coordinates start as NaN to tell "absent" from 0).
type mmdbRecord struct {
	Continent struct {
		Code string `maxminddb:"code"`
	} `maxminddb:"continent"`
	Country struct {
		ISOCode string `maxminddb:"iso_code"`
	} `maxminddb:"country"`
	RegisteredCountry struct {
		ISOCode string `maxminddb:"iso_code"`
	} `maxminddb:"registered_country"`
	Location struct {
		Latitude       float64 `maxminddb:"latitude"`
		Longitude      float64 `maxminddb:"longitude"`
		AccuracyRadius uint16  `maxminddb:"accuracy_radius"`
	} `maxminddb:"location"`
}

func (f *dbFile) lookup(ip netip.Addr) (*Record, error) {
	ip = ip.Unmap().WithZone("")
	if !ip.IsValid() || (f.ipv4Only && ip.Is6()) {
		return nil, nil
	}
	res := f.r.Lookup(ip)
	if err := res.Err(); err != nil {
		return nil, fmt.Errorf("geoip: lookup %s: %w", ip, err)
	}
	if !res.Found() {
		return nil, nil
	}
	var m mmdbRecord
	m.Location.Latitude, m.Location.Longitude = math.NaN(), math.NaN()
	if err := res.Decode(&m); err != nil {
		return nil, fmt.Errorf("geoip: decode %s: %w", ip, err)
	}
	return m.record(res.Prefix()), nil
}

// record converts a decoded record, or returns nil when it says nothing useful.
func (m *mmdbRecord) record(network netip.Prefix) *Record {
	rec := &Record{
		Country:        m.Country.ISOCode,
		Continent:      m.Continent.Code,
		AccuracyRadius: m.Location.AccuracyRadius,
		Network:        network,
	}
	if rec.Country == "" {
		rec.Country = m.RegisteredCountry.ISOCode
	}
	lat, lon := m.Location.Latitude, m.Location.Longitude
	if lat >= -90 && lat <= 90 && lon >= -180 && lon <= 180 { // false for NaN: absent
		rec.Lat, rec.Lon, rec.HasLocation = lat, lon, true
	}
	if rec.Country == "" && rec.Continent == "" && !rec.HasLocation {
		return nil
	}
	return rec
}
