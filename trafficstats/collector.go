package trafficstats

import (
	"hash/maphash"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/axiomhq/hyperloglog"
)

// Defaults of Config.
const (
	// DefaultInterval is how often an edge sends its statistics: the redirector keeps them at
	// one-minute resolution, and one message a minute per edge is nothing beside heartbeats.
	DefaultInterval = time.Minute
	// DefaultMaxTrackedSites bounds the sites counted at once; a network's site table bounds its
	// sites, and this bounds the memory if it is huge: about 35 KiB a busy site.
	DefaultMaxTrackedSites = 1024
	// MaxBacklog bounds the site entries waiting for a message; past it the oldest are dropped.
	MaxBacklog = 4 * MaxSites
	// countryCacheSize bounds the addresses' /24 and /48 whose country is remembered within an
	// interval, so that a busy client costs one GeoIP lookup per interval.
	countryCacheSize = 4096
	// seenSize bounds the visitor hashes a site remembers within an interval, so that a
	// returning visitor costs a map lookup instead of a sketch insertion (which, while the
	// sketch is sparse, merges a sorted list every few dozen insertions).
	seenSize = 8192
)

// Config configures a Collector. New does not modify it.
type Config struct {
	// Country returns the ISO country code of an address ("" when unknown). Nil: every visitor
	// counts under UnknownCountry.
	Country func(netip.Addr) string
	// MaxTrackedSites bounds the site counts held in one interval; responses of further sites
	// are not counted (and logged once per interval). A site counted by several of the
	// Collector's shards (one per core, up to 8) takes one from each: on a busy edge the bound
	// is reached with fewer sites, and the memory stays bounded. Zero: DefaultMaxTrackedSites.
	MaxTrackedSites int
	// Now returns the time. Nil: time.Now.
	Now func() time.Time
	// Logger receives what the collector drops. Nil discards.
	Logger *slog.Logger
}

// Collector counts responses per site until Take. Its methods are safe for concurrent use.
// Observe counts into one of several shards, the first it can lock without waiting, so that
// requests on different cores rarely wait for each other; Take merges the shards.
type Collector struct {
	cfg Config

	shards []collectorShard
	// tracked counts the site counts held by all shards, bounded by Config.MaxTrackedSites.
	tracked atomic.Int64

	mu    sync.Mutex
	start time.Time // guarded by mu
	// day and seed key the visitor hash: seed is made when day begins and replaced when it
	// ends, never stored or sent; each shard holds a copy. Guarded by mu.
	day  string
	seed maphash.Seed

	backlog []Site // entries waiting for a message, oldest first; guarded by mu
	dropped int    // entries dropped from a full backlog since the last message; guarded by mu
}

// maxShards bounds a Collector's shards: one per core, up to a few; Take merges them all.
const maxShards = 8

// collectorShard is one shard's counts over the current interval.
type collectorShard struct {
	mu        sync.Mutex
	sites     map[string]*siteCounts // guarded by mu
	seed      maphash.Seed           // the Collector's, guarded by mu
	countries map[uint64]string      // the interval's cache of Country by blockOf, guarded by mu
	untracked uint64                 // responses of sites past MaxTrackedSites, guarded by mu
	last      lastVisitor            // guarded by mu
	lastSite  *siteCounts            // the site counted last (siteOf), guarded by mu
	_         [64]byte               // keeps the next shard's lock off this one's cache line
}

// lastVisitor is the visitor a shard counted last. A connection's requests come in runs
// (keep-alive, HTTP/2's streams), and Observe sends an address to the same shard each time, so
// a run costs one country lookup and one visitor hash instead of one per response.
type lastVisitor struct {
	ip      netip.Addr
	country string
	site    *siteCounts // the site whose visitors hold ip this interval; nil for none
	// responses are the run's responses not yet added to site's countries (flushLast): one
	// addition per run instead of a map update per response.
	responses uint64
}

// siteCounts are one site's counts over the current interval.
type siteCounts struct {
	name             string // the site's, the key of the shard's map
	requests, bytes  uint64
	status           [4]uint64
	notModified      uint64
	paths, referrers *topK
	countries        map[string]uint64
	visitors         *hyperloglog.Sketch
	seen             map[uint64]struct{} // hashes inserted this interval, up to seenSize
}

// New returns a Collector whose first interval starts now.
func New(cfg Config) *Collector {
	if cfg.MaxTrackedSites <= 0 {
		cfg.MaxTrackedSites = DefaultMaxTrackedSites
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	c := &Collector{cfg: cfg, shards: make([]collectorShard, min(maxShards, runtime.GOMAXPROCS(0)))}
	c.start = cfg.Now()
	c.rekeyLocked(c.start)
	for i := range c.shards {
		c.shards[i].sites, c.shards[i].countries, c.shards[i].seed = map[string]*siteCounts{}, map[uint64]string{}, c.seed
	}
	return c
}

// Response is what Observe counts of one response.
type Response struct {
	Site    string // the site's name; empty (no site claimed the host): not counted
	Path    string // the request's path, without the query
	Referer string // the Referer field, empty for none
	Remote  string // the client's "ip:port" (http.Request.RemoteAddr)
	Status  int
	Bytes   int64
}

// Observe counts one response. It keeps no reference to r's strings.
func (c *Collector) Observe(r Response) {
	if r.Site == "" {
		return
	}
	ip := remoteIP(r.Remote)
	start := shardOf(ip, len(c.shards))
	for i := range c.shards {
		if sh := &c.shards[(start+i)%len(c.shards)]; sh.mu.TryLock() {
			c.observeLocked(sh, &r, ip)
			sh.mu.Unlock()
			return
		}
	}
	sh := &c.shards[start]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	c.observeLocked(sh, &r, ip)
}

// observeLocked counts r in sh, whose lock is held.
func (c *Collector) observeLocked(sh *collectorShard, r *Response, ip netip.Addr) {
	s := sh.siteOf(c, r.Site)
	if s == nil {
		sh.untracked++
		return
	}
	s.requests++
	s.bytes += uint64(max(r.Bytes, 0))
	if cl := r.Status/100 - 2; cl >= 0 && cl < len(s.status) {
		s.status[cl]++
	}
	if r.Status == 304 {
		s.notModified++
	}
	s.paths.add(r.Path)
	if r.Referer != "" {
		s.referrers.add(r.Referer)
	}
	if !ip.IsValid() {
		return
	}
	if last := &sh.last; ip != last.ip || s != last.site {
		cc := last.country
		if ip != last.ip {
			cc = sh.country(c.cfg.Country, ip)
		}
		sh.flushLast()
		*last = lastVisitor{ip: ip, country: cc, site: s}
		s.addVisitor(maphash.Comparable(sh.seed, ip.As16())) // the bytes, not netip.Addr's zone pointer
	}
	sh.last.responses++
}

// siteOf returns the counts of the named site, made when the site is new and MaxTrackedSites
// allows, else nil. The shard's lock is held. The last site's counts are remembered: a run of
// one site's responses costs a string comparison instead of a map lookup.
func (sh *collectorShard) siteOf(c *Collector, name string) *siteCounts {
	if s := sh.lastSite; s != nil && s.name == name {
		return s
	}
	s := sh.sites[name]
	if s == nil {
		if c.tracked.Add(1) > int64(c.cfg.MaxTrackedSites) {
			c.tracked.Add(-1)
			return nil
		}
		s = newSiteCounts(strings.Clone(name))
		sh.sites[s.name] = s
	}
	sh.lastSite = s
	return s
}

// flushLast adds the last visitor's responses to its site's countries. The shard's lock is held.
func (sh *collectorShard) flushLast() {
	if l := &sh.last; l.responses > 0 {
		l.site.addCountry(l.country, l.responses)
		l.responses = 0
	}
}

// shardOf is the shard to try first for a client's responses: the same for every response of
// an address, so that its runs meet the shard's lastVisitor; a random one without an address.
func shardOf(ip netip.Addr, n int) int {
	if !ip.IsValid() {
		return rand.IntN(n)
	}
	b := ip.As16()
	return int(b[15]^b[14]^b[13]^b[7]) % n
}

func newSiteCounts(name string) *siteCounts {
	sk, _ := hyperloglog.NewSketch(SketchPrecision, true) // cannot fail: a valid precision
	return &siteCounts{name: name, paths: newTopK(TrackedKeys), referrers: newTopK(TrackedKeys), countries: map[string]uint64{}, visitors: sk,
		seen: map[uint64]struct{}{}}
}

// addVisitor inserts a visitor's hash into the sketch, once per interval while seen has room.
func (s *siteCounts) addVisitor(h uint64) {
	if _, ok := s.seen[h]; ok {
		return
	}
	if len(s.seen) < seenSize {
		s.seen[h] = struct{}{}
	}
	s.visitors.InsertHash(h)
}

// addCountry counts n visitors of a country, under OtherCountry once MaxCountries are counted.
func (s *siteCounts) addCountry(cc string, n uint64) {
	if _, ok := s.countries[cc]; !ok && len(s.countries) >= MaxCountries && cc != UnknownCountry {
		cc = OtherCountry
	}
	s.countries[cc] += n
}

// country returns ip's country, from the interval's cache of its /24 or /48. The shard's lock
// is held.
func (sh *collectorShard) country(lookup func(netip.Addr) string, ip netip.Addr) string {
	if lookup == nil {
		return UnknownCountry
	}
	block := blockOf(ip)
	if cc, ok := sh.countries[block]; ok {
		return cc
	}
	cc := lookup(ip)
	if cc == "" || len(cc) > 8 {
		cc = UnknownCountry
	}
	if len(sh.countries) >= countryCacheSize {
		clear(sh.countries)
	}
	sh.countries[block] = cc
	return cc
}

// blockOf names ip's /24 (IPv4) or /48 (IPv6) as one integer, a cheaper map key than a
// netip.Prefix: an IPv4 block is its 24 bits, an IPv6 block its 48 bits with bit 63 set.
func blockOf(ip netip.Addr) uint64 {
	b := ip.As16()
	if ip.Is4() {
		return uint64(b[12])<<16 | uint64(b[13])<<8 | uint64(b[14])
	}
	return 1<<63 | uint64(b[0])<<40 | uint64(b[1])<<32 | uint64(b[2])<<24 | uint64(b[3])<<16 | uint64(b[4])<<8 | uint64(b[5])
}

// rekeyLocked makes a new visitor key when the day of now is not the key's.
func (c *Collector) rekeyLocked(now time.Time) {
	day := now.UTC().Format(time.DateOnly)
	if day == c.day {
		return
	}
	c.day = day
	c.seed = maphash.MakeSeed() // random; the previous day's is gone with this assignment
}

// Take ends the current interval and returns the message to send: the backlog's entries first,
// then the interval's sites, as many as fit MaxSites and MaxSize; the rest wait. The first Take
// after a UTC day ends replaces the visitor key, so each sketch has one key, named by its Day.
func (c *Collector) Take() Message {
	now := c.cfg.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closeIntervalLocked(now)
	m := Message{Type: Type, V: Version}
	size := len(`{"type":"stats","v":1,"sites":[],"backlog":000,"dropped":000}`)
	for len(c.backlog) > 0 && len(m.Sites) < MaxSites {
		n := entrySize(&c.backlog[0])
		if size+n+1 > MaxSize {
			break
		}
		size += n + 1
		m.Sites = append(m.Sites, c.backlog[0])
		c.backlog = c.backlog[1:]
	}
	m.Backlog, m.Dropped = len(c.backlog), c.dropped
	c.dropped = 0
	c.backlog = slices.Clip(c.backlog)
	return m
}

// closeIntervalLocked turns the interval's counts into backlog entries and starts the next
// interval (and the next day's key, when the day changed).
func (c *Collector) closeIntervalLocked(now time.Time) {
	end := now
	if !end.After(c.start) {
		end = c.start.Add(time.Millisecond)
	}
	day := c.day // the key of the interval's sketches
	c.rekeyLocked(end)
	sites, untracked := c.takeShards()
	names := make([]string, 0, len(sites))
	for name := range sites {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		c.backlog = append(c.backlog, sites[name].entry(name, c.start, end, day))
	}
	if over := len(c.backlog) - MaxBacklog; over > 0 {
		c.dropped += over
		c.backlog = c.backlog[over:]
	}
	if untracked > 0 {
		c.cfg.Logger.Warn("Traffic of sites past the tracked limit not counted", slog.Uint64("responses", untracked), slog.Int("limit", c.cfg.MaxTrackedSites))
	}
	c.start = end
}

// takeShards empties every shard, hands it the current visitor key, and returns their counts
// merged per site. Call it after rekeyLocked: counting goes on in the next interval under the
// next key, if the day changed.
func (c *Collector) takeShards() (map[string]*siteCounts, uint64) {
	sites, untracked := map[string]*siteCounts{}, uint64(0)
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		sh.flushLast()
		taken := sh.sites
		untracked += sh.untracked
		sh.sites, sh.untracked, sh.seed = map[string]*siteCounts{}, 0, c.seed
		clear(sh.countries)
		sh.last, sh.lastSite = lastVisitor{}, nil
		sh.mu.Unlock()
		c.tracked.Add(-int64(len(taken)))
		for name, s := range taken {
			if into := sites[name]; into != nil {
				into.merge(s)
			} else {
				sites[name] = s
			}
		}
	}
	return sites, untracked
}

// merge adds o's counts to s.
func (s *siteCounts) merge(o *siteCounts) {
	s.requests += o.requests
	s.bytes += o.bytes
	for i := range s.status {
		s.status[i] += o.status[i]
	}
	s.notModified += o.notModified
	s.paths.merge(o.paths)
	s.referrers.merge(o.referrers)
	for _, cc := range slices.Sorted(maps.Keys(o.countries)) {
		s.addCountry(cc, o.countries[cc])
	}
	_ = s.visitors.Merge(o.visitors) // cannot fail: both of SketchPrecision
}

// entry is the site's counts as a message entry.
func (s *siteCounts) entry(name string, start, end time.Time, day string) Site {
	e := Site{Site: name, Start: start.UnixMilli(), End: end.UnixMilli(), Requests: s.requests, Bytes: s.bytes,
		Status: s.status, NotModified: s.notModified, Paths: s.paths.top(MaxTop), Referrers: s.referrers.top(MaxTop), Day: day}
	if e.End <= e.Start {
		e.End = e.Start + 1
	}
	for cc, n := range s.countries {
		e.Countries = append(e.Countries, Count{Key: cc, N: n})
	}
	slices.SortFunc(e.Countries, func(a, b Count) int { return strings.Compare(a.Key, b.Key) })
	if b, err := s.visitors.MarshalBinary(); err == nil && len(b) <= MaxSketchBytes {
		e.Visitors = b
	}
	return e
}

// entrySize is the encoded size of an entry.
func entrySize(e *Site) int {
	b, err := Encode(Message{Sites: []Site{*e}})
	if err != nil {
		return MaxSize
	}
	return len(b) - len(`{"type":"stats","v":1,"sites":[]}`)
}
