package trafficseries

import (
	"cmp"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/axiomhq/hyperloglog"
	bolt "go.etcd.io/bbolt"

	"github.com/dt-cdn/dt/trafficstats"
)

// MaxSince bounds how far back a query reaches: what the store keeps.
const MaxSince = HourRetention

// Result is a site's traffic over a range, as the dashboard's API and dt stats show it.
type Result struct {
	Site string `json:"site"`
	// From and Until bound the range (Unix seconds); Step is the points' resolution in seconds:
	// 60 for ranges of up to a day, 3600 beyond.
	From  int64 `json:"from"`
	Until int64 `json:"until"`
	Step  int64 `json:"step"`
	// Points are the network's totals per step (steps without traffic left out), oldest first;
	// Edges the same per edge (by node id).
	Points []Point            `json:"points"`
	Edges  map[string][]Point `json:"edges"`
	// Total adds up Points.
	Total Point `json:"total"`
	// Paths, Referrers and Countries are those of the days the range touches, largest first.
	Paths     []trafficstats.Count `json:"paths"`
	Referrers []trafficstats.Count `json:"referrers"`
	Countries []trafficstats.Count `json:"countries"`
	// Visitors estimates the unique visitors of those days (see the package's caveats).
	Visitors uint64 `json:"visitors"`
	// Redirects are the visitors the redirectors sent to each edge over the range, by reason,
	// largest first; RedirectEdges the same per edge (by node id) and step, oldest first.
	Redirects     []Redirects                `json:"redirects"`
	RedirectEdges map[string][]RedirectPoint `json:"redirect_edges"`
}

// Query returns the site's traffic over the last since (at most MaxSince).
func (s *Store) Query(site string, since time.Duration) (Result, error) {
	if since <= 0 || since > MaxSince {
		return Result{}, fmt.Errorf("trafficseries: a range of %v: want up to %v", since, MaxSince)
	}
	now := s.cfg.Now().UTC()
	r := Result{Site: site, Until: now.Unix(), Edges: map[string][]Point{}, Points: []Point{},
		Redirects: []Redirects{}, RedirectEdges: map[string][]RedirectPoint{}}
	bucket, redirects, step := bucketHour, bucketRedirectHour, time.Hour
	if since <= 24*time.Hour {
		bucket, redirects, step = bucketMinute, bucketRedirectMinute, time.Minute
	}
	from := now.Add(-since).Truncate(step)
	r.From, r.Step = from.Unix(), int64(step/time.Second)
	err := s.db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucket).Bucket([]byte(site)); b != nil {
			r.readPoints(b, from)
		}
		if b := tx.Bucket(redirects).Bucket([]byte(site)); b != nil {
			r.readRedirects(b, from)
		}
		if b := tx.Bucket(bucketDay).Bucket([]byte(site)); b != nil {
			return r.readDays(b, from)
		}
		return nil
	})
	return r, err
}

// readPoints reads the points from from on, per edge and added up per step.
func (r *Result) readPoints(b *bolt.Bucket, from time.Time) {
	c := b.Cursor()
	start := binary.BigEndian.AppendUint64(nil, uint64(from.Unix()))
	for k, v := c.Seek(start); k != nil; k, v = c.Next() {
		if len(k) < 8 {
			continue
		}
		p, err := decodePoint(v)
		if err != nil {
			continue
		}
		p.Time = int64(binary.BigEndian.Uint64(k))
		edge := string(k[8:])
		r.Edges[edge] = append(r.Edges[edge], p)
		if n := len(r.Points); n > 0 && r.Points[n-1].Time == p.Time {
			r.Points[n-1].add(p)
		} else {
			r.Points = append(r.Points, p)
		}
		r.Total.add(p)
	}
}

// readDays merges the days from from's day on.
func (r *Result) readDays(b *bolt.Bucket, from time.Time) error {
	c := b.Cursor()
	countries := map[string]uint64{}
	visitors, _ := hyperloglog.NewSketch(trafficstats.SketchPrecision, true)
	for k, v := c.Seek([]byte(from.Format(time.DateOnly))); k != nil; k, v = c.Next() {
		var d day
		if json.Unmarshal(v, &d) != nil {
			continue
		}
		r.Paths = mergeCounts(r.Paths, d.Paths, trafficstats.MaxTop)
		r.Referrers = mergeCounts(r.Referrers, d.Referrers, trafficstats.MaxTop)
		for cc, n := range d.Countries {
			countries[cc] += n
		}
		sk, _ := hyperloglog.NewSketch(trafficstats.SketchPrecision, true)
		if len(d.Visitors) > 0 && sk.UnmarshalBinary(d.Visitors) == nil {
			if err := visitors.Merge(sk); err != nil {
				return err
			}
		}
	}
	for cc, n := range countries {
		r.Countries = append(r.Countries, trafficstats.Count{Key: cc, N: n})
	}
	slices.SortFunc(r.Countries, func(a, b trafficstats.Count) int {
		if c := cmp.Compare(b.N, a.N); c != 0 {
			return c
		}
		return strings.Compare(a.Key, b.Key)
	})
	r.Visitors = visitors.Estimate()
	return nil
}

// Sites returns the sites with series, sorted.
func (s *Store) Sites() ([]string, error) {
	var out []string
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketHour).ForEachBucket(func(k []byte) error {
			out = append(out, string(k))
			return nil
		})
	})
	return out, err
}
