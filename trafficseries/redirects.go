package trafficseries

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Bounds of the redirect counts.
const (
	// MaxPendingRedirects bounds the (site, edge, reason) counts a RedirectCounter holds between
	// two Flushes: a site's visitors go to a few edges for a few reasons, so this covers hundreds
	// of busy sites a flush; past it redirects are counted as dropped rather than kept.
	MaxPendingRedirects = 4096
	// MaxReasonBytes bounds a reason as stored; longer ones are cut.
	MaxReasonBytes = 32
)

// Buckets of the redirect counts, beside the traffic's: separate buckets, so that a store
// opened by a release without them is read as before (it never opens these).
var (
	bucketRedirectMinute = []byte("rm")
	bucketRedirectHour   = []byte("rh")
)

// RedirectKey names a count of redirects: the site the visitors asked for, the edge (node id)
// they were sent to and why (the redirector's reason: "same country", "fallback", …).
type RedirectKey struct {
	Site, Edge, Reason string
}

// RedirectCounter counts redirects in memory until Flush stores them, so that a redirect costs a
// map increment rather than a database write. Safe for concurrent use.
type RedirectCounter struct {
	mu      sync.Mutex
	pending map[RedirectKey]uint64 // guarded by mu
	dropped atomic.Uint64
}

// NewRedirectCounter returns an empty RedirectCounter.
func NewRedirectCounter() *RedirectCounter {
	return &RedirectCounter{pending: map[RedirectKey]uint64{}}
}

// Count counts one redirect, or drops it when MaxPendingRedirects other counts are held.
func (c *RedirectCounter) Count(site, edge, reason string) {
	k := RedirectKey{Site: site, Edge: edge, Reason: reason}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.pending[k]; !ok && len(c.pending) >= MaxPendingRedirects {
		c.dropped.Add(1)
		return
	}
	c.pending[k]++
}

// Dropped returns how many redirects were not counted since NewRedirectCounter.
func (c *RedirectCounter) Dropped() uint64 { return c.dropped.Load() }

// Flush stores the counts held in the minute and hour of at, and starts counting anew. On
// failure the counts are lost: they are a statistic, not a record.
func (c *RedirectCounter) Flush(s *Store, at time.Time) error {
	c.mu.Lock()
	counts := c.pending
	c.pending = map[RedirectKey]uint64{}
	c.mu.Unlock()
	if len(counts) == 0 {
		return nil
	}
	return s.AddRedirects(at, counts)
}

// AddRedirects adds counts to the minute and the hour at falls in. Sites past Config.MaxSites
// (counted apart from the traffic's) are dropped and counted in Dropped.
func (s *Store) AddRedirects(at time.Time, counts map[RedirectKey]uint64) error {
	at = at.UTC()
	err := s.db.Update(func(tx *bolt.Tx) error {
		for k, n := range counts {
			if tx.Bucket(bucketRedirectHour).Bucket([]byte(k.Site)) == nil {
				if s.redirectSites >= s.cfg.MaxSites {
					s.dropped.Add(1)
					continue
				}
				s.redirectSites++
			}
			for _, r := range []struct {
				bucket []byte
				at     time.Time
			}{{bucketRedirectMinute, at.Truncate(time.Minute)}, {bucketRedirectHour, at.Truncate(time.Hour)}} {
				if err := addRedirect(tx.Bucket(r.bucket), r.at, k, n); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("trafficseries: add redirects: %w", err)
	}
	return nil
}

// addRedirect adds n to the count of k at at in root's bucket of k's site.
func addRedirect(root *bolt.Bucket, at time.Time, k RedirectKey, n uint64) error {
	b, err := siteBucket(root, k.Site)
	if err != nil {
		return err
	}
	key := redirectKey(at, k.Edge, k.Reason)
	if v := b.Get(key); v != nil {
		if old, m := binary.Uvarint(v); m > 0 {
			n += old
		}
	}
	return b.Put(key, binary.AppendUvarint(nil, n))
}

// redirectKey is a redirect count's key in its site's bucket: the time (Unix seconds,
// big-endian), the edge, a zero byte and the reason.
func redirectKey(at time.Time, edge, reason string) []byte {
	reason = strings.ToValidUTF8(reason[:min(len(reason), MaxReasonBytes)], "")
	k := binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(edge)+1+len(reason)), uint64(at.Unix()))
	return append(append(append(k, edge...), 0), reason...)
}

// Redirects is a count of redirects over a query's range: to one edge for one reason.
type Redirects struct {
	Edge   string `json:"edge"`
	Reason string `json:"reason"`
	N      uint64 `json:"n"`
}

// RedirectPoint is how many redirects went to an edge over one step.
type RedirectPoint struct {
	Time int64  `json:"t"`
	N    uint64 `json:"n"`
}

// readRedirects reads the site's redirect counts from from on: totals per edge and reason, and
// points per edge.
func (r *Result) readRedirects(b *bolt.Bucket, from time.Time) {
	totals := map[[2]string]uint64{}
	c := b.Cursor()
	for k, v := c.Seek(binary.BigEndian.AppendUint64(nil, uint64(from.Unix()))); k != nil; k, v = c.Next() {
		edge, reason, ok := strings.Cut(string(k[min(8, len(k)):]), "\x00")
		n, m := binary.Uvarint(v)
		if len(k) < 8 || !ok || m <= 0 {
			continue
		}
		totals[[2]string{edge, reason}] += n
		t := int64(binary.BigEndian.Uint64(k))
		ps := r.RedirectEdges[edge]
		if len(ps) > 0 && ps[len(ps)-1].Time == t {
			ps[len(ps)-1].N += n
		} else {
			ps = append(ps, RedirectPoint{Time: t, N: n})
		}
		r.RedirectEdges[edge] = ps
	}
	for k, n := range totals {
		r.Redirects = append(r.Redirects, Redirects{Edge: k[0], Reason: k[1], N: n})
	}
	slices.SortFunc(r.Redirects, func(a, b Redirects) int {
		return cmp.Or(cmp.Compare(b.N, a.N), strings.Compare(a.Edge, b.Edge), strings.Compare(a.Reason, b.Reason))
	})
}
