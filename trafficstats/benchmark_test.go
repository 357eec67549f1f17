package trafficstats

import (
	"fmt"
	"testing"
)

// BenchmarkObserve measures what a response costs the edge to count: 100 paths, 1,000 visitors.
func BenchmarkObserve(b *testing.B) {
	c := New(Config{})
	rs := make([]Response, 1000)
	for i := range rs {
		rs[i] = Response{Site: "blog", Path: fmt.Sprintf("/p/%d", i%100), Referer: "https://r.example/", Remote: fmt.Sprintf("10.0.%d.%d:1", i/250, i%250), Status: 200, Bytes: 1000}
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		c.Observe(rs[i%len(rs)])
		i++
	}
}

// BenchmarkObserveParallel is BenchmarkObserve from every core at once, as an edge's requests
// count: what the shards save in waiting for each other.
func BenchmarkObserveParallel(b *testing.B) {
	c := New(Config{})
	rs := make([]Response, 1000)
	for i := range rs {
		rs[i] = Response{Site: "blog", Path: fmt.Sprintf("/p/%d", i%100), Referer: "https://r.example/", Remote: fmt.Sprintf("10.0.%d.%d:1", i/250, i%250), Status: 200, Bytes: 1000}
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			c.Observe(rs[i%len(rs)])
			i++
		}
	})
}
