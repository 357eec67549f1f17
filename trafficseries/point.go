package trafficseries

import (
	"cmp"
	"encoding/binary"
	"errors"
	"slices"
	"strings"

	"github.com/dt-cdn/dt/trafficstats"
)

// Point is the traffic of a site (at one edge, or all of them) over one step.
type Point struct {
	// Time is the start of the step, in Unix seconds.
	Time        int64     `json:"t"`
	Requests    uint64    `json:"requests"`
	Bytes       uint64    `json:"bytes"`
	Status      [4]uint64 `json:"status"` // 2xx, 3xx, 4xx, 5xx
	NotModified uint64    `json:"not_modified"`
}

func pointOf(e *trafficstats.Site) Point {
	return Point{Requests: e.Requests, Bytes: e.Bytes, Status: e.Status, NotModified: e.NotModified}
}

// add adds q's counts to p.
func (p *Point) add(q Point) {
	p.Requests += q.Requests
	p.Bytes += q.Bytes
	for i := range p.Status {
		p.Status[i] += q.Status[i]
	}
	p.NotModified += q.NotModified
}

// encode returns p's counts as varints (Time is in the key): about 20 bytes.
func (p *Point) encode() []byte {
	b := make([]byte, 0, 8*binary.MaxVarintLen64)
	for _, v := range p.fields() {
		b = binary.AppendUvarint(b, *v)
	}
	return b
}

func (p *Point) fields() [7]*uint64 {
	return [7]*uint64{&p.Requests, &p.Bytes, &p.Status[0], &p.Status[1], &p.Status[2], &p.Status[3], &p.NotModified}
}

var errBadPoint = errors.New("trafficseries: malformed point")

func decodePoint(b []byte) (Point, error) {
	var p Point
	for _, v := range p.fields() {
		x, n := binary.Uvarint(b)
		if n <= 0 {
			return Point{}, errBadPoint
		}
		*v, b = x, b[n:]
	}
	return p, nil
}

// mergeCounts adds b's counts to a's by key and keeps the most largest (errors add up too).
func mergeCounts(a, b []trafficstats.Count, most int) []trafficstats.Count {
	if len(b) == 0 {
		return a
	}
	byKey := make(map[string]int, len(a)+len(b))
	out := slices.Clone(a)
	for i, c := range out {
		byKey[c.Key] = i
	}
	for _, c := range b {
		if i, ok := byKey[c.Key]; ok {
			out[i].N += c.N
			out[i].Err += c.Err
			continue
		}
		byKey[c.Key] = len(out)
		out = append(out, c)
	}
	slices.SortFunc(out, func(x, y trafficstats.Count) int {
		if c := cmp.Compare(y.N, x.N); c != 0 {
			return c
		}
		return strings.Compare(x.Key, y.Key)
	})
	return out[:min(most, len(out))]
}
