package trafficseries

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/axiomhq/hyperloglog"
	bolt "go.etcd.io/bbolt"

	"github.com/dt-cdn/dt/trafficstats"
)

// Retention and bounds of a Store.
const (
	// MinuteRetention is how long minute points are kept: a day, and an hour more so that a
	// query of the last 24 hours is whole.
	MinuteRetention = 25 * time.Hour
	// HourRetention is how long hour points and days are kept.
	HourRetention = 90 * 24 * time.Hour
	// PruneEvery is how often Add prunes old points.
	PruneEvery = time.Hour
	// DefaultMaxSites bounds the sites kept (Config.MaxSites): a network's site table bounds its
	// sites, this bounds the disk if an edge reports junk.
	DefaultMaxSites = 10_000
	// TrackedKeys bounds a day's paths and referrers kept per site: the merge of the edges'
	// top lists keeps the largest.
	TrackedKeys = 64
)

// Names of the buckets: per resolution, one nested bucket per site.
var (
	bucketMinute = []byte("m")
	bucketHour   = []byte("h")
	bucketDay    = []byte("d")
)

// Config configures a Store.
type Config struct {
	// Dir is the directory of the database file (traffic.db). Required.
	Dir string
	// NoSync skips fsync on commit, for tests: a crash may lose the last minutes. False: every
	// Add is durable when it returns.
	NoSync bool
	// Now returns the time. Nil: time.Now.
	Now func() time.Time
	// Logger receives what the store drops. Nil discards.
	Logger *slog.Logger
	// MaxSites bounds the sites kept; entries of further sites are dropped and counted
	// (Store.Dropped). Zero: DefaultMaxSites.
	MaxSites int
}

// Store is the series database. Its methods are safe for concurrent use (bbolt's transactions).
type Store struct {
	cfg       Config
	db        *bolt.DB
	lastPrune time.Time // touched only within Add's write transaction
	// sites counts the sites kept; Add reads and updates it within its write transaction
	// (bbolt runs one at a time). A transaction that fails after creating a site leaves it
	// counted: the bound errs on the safe side.
	sites int
	// redirectSites counts the sites with redirect counts, as sites counts the traffic's.
	redirectSites int
	dropped       atomic.Uint64
	// OnAdd, when set before the first Add, is called with each site entry stored, for metrics.
	OnAdd func(edge string, s *trafficstats.Site)
}

// Open opens (creating if needed) the series database in cfg.Dir.
func Open(cfg Config) (*Store, error) {
	if cfg.Dir == "" {
		return nil, errors.New("trafficseries: Config.Dir is required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxSites <= 0 {
		cfg.MaxSites = DefaultMaxSites
	}
	db, err := bolt.Open(filepath.Join(cfg.Dir, "traffic.db"), 0o600, &bolt.Options{Timeout: time.Second, NoSync: cfg.NoSync, NoFreelistSync: true})
	if err != nil {
		return nil, fmt.Errorf("trafficseries: %w", err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketMinute, bucketHour, bucketDay, bucketRedirectMinute, bucketRedirectHour} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("trafficseries: %w", err)
	}
	st := &Store{cfg: cfg, db: db}
	err = db.View(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bucketRedirectHour).ForEachBucket(func([]byte) error { st.redirectSites++; return nil }); err != nil {
			return err
		}
		return tx.Bucket(bucketHour).ForEachBucket(func([]byte) error { st.sites++; return nil })
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("trafficseries: %w", err)
	}
	return st, nil
}

// Dropped returns how many site entries Add dropped because Config.MaxSites sites were kept.
func (s *Store) Dropped() uint64 { return s.dropped.Load() }

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// Add stores a statistics message of the edge named edge (its node id): each site entry is added
// to the minute and the hour its interval ends in, and to its day's tops and visitors.
func (s *Store) Add(edge string, m trafficstats.Message) error {
	now := s.cfg.Now()
	err := s.db.Update(func(tx *bolt.Tx) error {
		for i := range m.Sites {
			e := &m.Sites[i]
			if tx.Bucket(bucketHour).Bucket([]byte(e.Site)) == nil {
				if s.sites >= s.cfg.MaxSites {
					s.dropped.Add(1)
					s.cfg.Logger.Warn("Traffic series: too many sites; entry dropped", slog.String("site", e.Site), slog.Int("limit", s.cfg.MaxSites))
					continue
				}
				s.sites++
			}
			if err := addEntry(tx, edge, e); err != nil {
				return err
			}
			if s.OnAdd != nil {
				s.OnAdd(edge, e)
			}
		}
		if now.Sub(s.lastPrune) >= PruneEvery {
			s.lastPrune = now
			return prune(tx, now)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("trafficseries: add: %w", err)
	}
	return nil
}

// siteBucket returns the site's nested bucket of root, creating it if needed.
func siteBucket(root *bolt.Bucket, site string) (*bolt.Bucket, error) {
	return root.CreateBucketIfNotExists([]byte(site))
}

// addEntry adds one site entry to its minute, hour and day.
func addEntry(tx *bolt.Tx, edge string, e *trafficstats.Site) error {
	end := time.UnixMilli(e.End - 1).UTC()
	p := pointOf(e)
	for _, r := range []struct {
		bucket []byte
		at     time.Time
	}{{bucketMinute, end.Truncate(time.Minute)}, {bucketHour, end.Truncate(time.Hour)}} {
		b, err := siteBucket(tx.Bucket(r.bucket), e.Site)
		if err != nil {
			return err
		}
		k := pointKey(r.at, edge)
		var old Point
		if v := b.Get(k); v != nil {
			old, _ = decodePoint(v) // a point that does not decode is replaced
		}
		old.add(p)
		if err := b.Put(k, old.encode()); err != nil {
			return err
		}
	}
	return addDay(tx, e)
}

// pointKey is a point's key in its site's bucket: the time (Unix seconds, big-endian, so keys
// sort by time) then the edge.
func pointKey(at time.Time, edge string) []byte {
	k := binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(edge)), uint64(at.Unix()))
	return append(k, edge...)
}

// day is a site's day: its top paths and referrers (merged over edges), countries and the union
// of its edges' visitor sketches.
type day struct {
	Paths     []trafficstats.Count `json:"paths,omitempty"`
	Referrers []trafficstats.Count `json:"referrers,omitempty"`
	Countries map[string]uint64    `json:"countries,omitempty"`
	Visitors  []byte               `json:"visitors,omitempty"`
}

// addDay merges an entry into its site's day.
func addDay(tx *bolt.Tx, e *trafficstats.Site) error {
	b, err := siteBucket(tx.Bucket(bucketDay), e.Site)
	if err != nil {
		return err
	}
	var d day
	if v := b.Get([]byte(e.Day)); v != nil {
		_ = json.Unmarshal(v, &d) // a day that does not decode starts again
	}
	d.Paths = mergeCounts(d.Paths, e.Paths, TrackedKeys)
	d.Referrers = mergeCounts(d.Referrers, e.Referrers, TrackedKeys)
	if d.Countries == nil {
		d.Countries = map[string]uint64{}
	}
	for _, c := range e.Countries {
		d.Countries[c.Key] += c.N
	}
	if d.Visitors, err = mergeSketch(d.Visitors, e); err != nil {
		return err
	}
	v, err := json.Marshal(d)
	if err != nil {
		return err
	}
	return b.Put([]byte(e.Day), v)
}

// mergeSketch returns the union of the sketch in stored and the entry's.
func mergeSketch(stored []byte, e *trafficstats.Site) ([]byte, error) {
	sk, err := e.Sketch()
	if err != nil {
		return stored, nil // trafficstats.Decode checked it; nothing to add otherwise
	}
	if len(stored) > 0 {
		old, _ := hyperloglog.NewSketch(trafficstats.SketchPrecision, true)
		if old.UnmarshalBinary(stored) == nil {
			if err := sk.Merge(old); err != nil {
				return nil, err
			}
		}
	}
	return sk.MarshalBinary()
}

// prune deletes minute points older than MinuteRetention, and hour points and days older than
// HourRetention.
func prune(tx *bolt.Tx, now time.Time) error {
	for _, r := range []struct {
		bucket []byte
		before time.Time
	}{{bucketMinute, now.Add(-MinuteRetention)}, {bucketHour, now.Add(-HourRetention)},
		{bucketRedirectMinute, now.Add(-MinuteRetention)}, {bucketRedirectHour, now.Add(-HourRetention)}} {
		limit := binary.BigEndian.AppendUint64(nil, uint64(r.before.Unix()))
		err := tx.Bucket(r.bucket).ForEachBucket(func(site []byte) error {
			c := tx.Bucket(r.bucket).Bucket(site).Cursor()
			for k, _ := c.First(); k != nil && string(k[:min(8, len(k))]) < string(limit); k, _ = c.First() {
				if err := c.Delete(); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	oldest := now.Add(-HourRetention).UTC().Format(time.DateOnly)
	days := tx.Bucket(bucketDay)
	return days.ForEachBucket(func(site []byte) error {
		c := days.Bucket(site).Cursor()
		for k, _ := c.First(); k != nil && string(k) < oldest; k, _ = c.First() {
			if err := c.Delete(); err != nil {
				return err
			}
		}
		return nil
	})
}
