package trafficstats

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/axiomhq/hyperloglog"

	"github.com/dt-cdn/dt/site"
)

// Type is the value of the "type" field that marks a dt message as a statistics message.
// Receivers of earlier releases read the type first and ignore messages of other types
// (heartbeat.ErrNotHeartbeat), so these pass them by.
const Type = "stats"

// Version is the format written by this code. Readers accept newer minor additions (unknown
// fields are ignored) and refuse other versions.
const Version = 1

// Bounds of a message, checked by Decode. They keep a message under dt's DefaultMaxMessageSize
// (64 KiB) whatever the traffic, and a receiver's work per message small.
const (
	// MaxSize bounds an encoded message: 48 KiB, under dt's 64 KiB message limit with room.
	MaxSize = 48 << 10
	// MaxSites bounds the sites of one message; more wait for the next interval's.
	MaxSites = 64
	// MaxTop is how many top paths and referrers a site entry carries.
	MaxTop = 10
	// TrackedKeys is how many counters the space-saving count of paths and referrers keeps per
	// site and interval: enough that the MaxTop reported are right for any key over 1/64 of a
	// site's requests.
	TrackedKeys = 64
	// MaxKeyBytes bounds a path or referrer as counted and sent; longer ones are truncated.
	MaxKeyBytes = 256
	// MaxCountries bounds the countries of a site entry; the rest count under OtherCountry.
	MaxCountries = 32
	// MaxSketchBytes bounds a site's encoded visitor sketch: dense at SketchPrecision it takes
	// 4 KiB of registers and an 8-byte header; the sparse form grows to about 4,260 bytes
	// (measured: TestSketchSize) before the sketch turns dense.
	MaxSketchBytes = 1<<SketchPrecision + 512
	// MaxInterval bounds the interval a site entry covers.
	MaxInterval = 24 * time.Hour
)

// SketchPrecision is the precision of the visitor sketches: 2^12 registers, a standard error of
// 1.04/√4096 ≈ 1.6 %, 4 KiB when dense.
const SketchPrecision = 12

// OtherCountry counts the visitors of countries past MaxCountries, and UnknownCountry those whose
// address the GeoIP database does not place (or an edge without one).
const (
	OtherCountry   = "other"
	UnknownCountry = "unknown"
)

// Message is one edge's statistics message: the sites it served, each over its interval.
type Message struct {
	Type string `json:"type"` // always Type
	V    int    `json:"v"`    // format version
	// Sites are the entries, at most MaxSites.
	Sites []Site `json:"sites"`
	// Backlog counts the entries waiting for a later message; Dropped those the edge dropped
	// since its previous message because the backlog was full (MaxBacklog).
	Backlog int `json:"backlog,omitempty"`
	Dropped int `json:"dropped,omitempty"`
}

// Site is the traffic of one site over one interval at one edge.
type Site struct {
	Site string `json:"site"`
	// Start and End bound the interval, in Unix milliseconds at the edge.
	Start int64 `json:"start"`
	End   int64 `json:"end"`
	// Requests and Bytes are the responses and their body bytes.
	Requests uint64 `json:"requests"`
	Bytes    uint64 `json:"bytes"`
	// Status counts responses by class: 2xx, 3xx, 4xx, 5xx (1xx and others are not counted).
	Status [4]uint64 `json:"status"`
	// NotModified counts 304 responses (cache validations), also counted in Status[1].
	NotModified uint64 `json:"not_modified"`
	// Paths and Referrers are the most requested paths and referring URLs, largest first, at
	// most MaxTop each; Countries count the requests by the client's country (ISO 3166-1
	// alpha-2, OtherCountry, UnknownCountry), at most MaxCountries+2, sorted by key.
	Paths     []Count `json:"paths,omitempty"`
	Referrers []Count `json:"referrers,omitempty"`
	Countries []Count `json:"countries,omitempty"`
	// Day is the UTC day ("2006-01-02") whose key hashed the addresses in Visitors: sketches
	// of one edge and one day may be merged. The key changes at the end of the first interval
	// that ends after the day does, so an interval across midnight counts under the old day.
	Day string `json:"day"`
	// Visitors is the HyperLogLog sketch of the interval's visitors (hyperloglog's binary form).
	Visitors []byte `json:"visitors,omitempty"`
}

// Count is a key and how often it was seen; Err bounds how much N may exceed the truth (zero:
// exact).
type Count struct {
	Key string `json:"k"`
	N   uint64 `json:"n"`
	Err uint64 `json:"e,omitempty"`
}

// Sketch decodes the site's visitor sketch (an empty one when there is none). Decode has
// checked it.
func (s *Site) Sketch() (*hyperloglog.Sketch, error) {
	sk, _ := hyperloglog.NewSketch(SketchPrecision, true) // cannot fail: a valid precision
	if len(s.Visitors) == 0 {
		return sk, nil
	}
	if err := sk.UnmarshalBinary(s.Visitors); err != nil {
		return nil, fmt.Errorf("%w: visitors of %s: %w", ErrInvalid, s.Site, err)
	}
	return sk, nil
}

// Encode returns m's JSON, with Type and Version set.
func Encode(m Message) ([]byte, error) {
	m.Type, m.V = Type, Version
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("trafficstats: encode: %w", err)
	}
	return b, nil
}

// Decode parses and checks a statistics message. It returns ErrNotStats for a message of another
// type, and an error wrapping ErrInvalid for one that breaks the format.
func Decode(b []byte) (Message, error) {
	var m Message
	if len(b) > MaxSize {
		return m, fmt.Errorf("%w: %d bytes over %d", ErrInvalid, len(b), MaxSize)
	}
	var probe struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(b, &probe); err != nil || probe.Type != Type {
		return m, ErrNotStats
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if m.V != Version {
		return m, fmt.Errorf("%w: version %d", ErrInvalid, m.V)
	}
	if len(m.Sites) > MaxSites || m.Backlog < 0 || m.Dropped < 0 {
		return m, fmt.Errorf("%w: %d sites (at most %d), backlog %d, dropped %d", ErrInvalid, len(m.Sites), MaxSites, m.Backlog, m.Dropped)
	}
	for i := range m.Sites {
		if err := m.Sites[i].validate(); err != nil {
			return m, fmt.Errorf("%w: site entry %d: %w", ErrInvalid, i, err)
		}
	}
	return m, nil
}

// validate checks one site entry: the rules a receiver relies on when it adds entries up.
func (s *Site) validate() error {
	if err := site.CheckSiteName(s.Site); err != nil {
		return err
	}
	if s.Start <= 0 || s.End <= s.Start || time.Duration(s.End-s.Start)*time.Millisecond > MaxInterval {
		return fmt.Errorf("interval %d..%d: not a forward interval of at most %v", s.Start, s.End, MaxInterval)
	}
	var classes uint64
	for _, n := range s.Status {
		classes += n
		if classes < n {
			return errors.New("status counts overflow")
		}
	}
	if classes > s.Requests || s.NotModified > s.Status[1] {
		return fmt.Errorf("status classes %v (304: %d) exceed the %d requests", s.Status, s.NotModified, s.Requests)
	}
	if _, err := time.Parse(time.DateOnly, s.Day); err != nil {
		return fmt.Errorf("day %q: %w", s.Day, err)
	}
	if err := checkCounts("paths", s.Paths, MaxTop, s.Requests); err != nil {
		return err
	}
	if err := checkCounts("referrers", s.Referrers, MaxTop, s.Requests); err != nil {
		return err
	}
	if err := checkCounts("countries", s.Countries, MaxCountries+2, s.Requests); err != nil {
		return err
	}
	return s.checkSketch()
}

// checkCounts checks a list of counts: bounded, keys of valid UTF-8 within MaxKeyBytes, each
// distinct, no count above the requests and no error above its count.
func checkCounts(what string, cs []Count, most int, requests uint64) error {
	if len(cs) > most {
		return fmt.Errorf("%s: %d entries, at most %d", what, len(cs), most)
	}
	seen := make(map[string]bool, len(cs))
	for _, c := range cs {
		switch {
		case c.Key == "" || len(c.Key) > MaxKeyBytes || !utf8.ValidString(c.Key):
			return fmt.Errorf("%s: key of %d bytes: want 1 to %d bytes of UTF-8", what, len(c.Key), MaxKeyBytes)
		case seen[c.Key]:
			return fmt.Errorf("%s: key %q twice", what, c.Key)
		case c.N == 0 || c.N > requests || c.Err >= c.N:
			return fmt.Errorf("%s: count %d (error %d) of %q against %d requests", what, c.N, c.Err, c.Key, requests)
		}
		seen[c.Key] = true
	}
	return nil
}

// checkSketch checks the visitor sketch: bounded, of SketchPrecision, and decodable.
func (s *Site) checkSketch() error {
	if len(s.Visitors) == 0 {
		return nil
	}
	if len(s.Visitors) > MaxSketchBytes || len(s.Visitors) < 2 || s.Visitors[1] != SketchPrecision {
		return fmt.Errorf("visitor sketch of %d bytes: want a precision-%d sketch of at most %d bytes", len(s.Visitors), SketchPrecision, MaxSketchBytes)
	}
	_, err := s.Sketch()
	return err
}
