package trafficstats

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
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

// BenchmarkObserveLongTail counts responses as a busy site sees them: paths drawn from 20,000 by
// a Zipf law (a few pages most requested, a long tail each requested rarely), 5,000 clients in
// 500 /24s placed by a country lookup, one in three with one of 200 Referers.
func BenchmarkObserveLongTail(b *testing.B) {
	c := New(Config{Country: func(netip.Addr) string { return "NL" }})
	zipf := rand.NewZipf(rand.New(rand.NewPCG(1, 2)), 1.1, 1, 19_999)
	rs := make([]Response, 1<<16)
	for i := range rs {
		rs[i] = Response{Site: "blog", Path: fmt.Sprintf("/blog/post-%d/", zipf.Uint64()), Remote: fmt.Sprintf("203.%d.%d.%d:%d", i%5000/10/250, i%5000/10%250, i%10, 40000+i%20000), Status: 200, Bytes: 1000}
		if i%3 == 0 {
			rs[i].Referer = fmt.Sprintf("https://news.example/item?id=%d", zipf.Uint64()%200)
		}
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		c.Observe(rs[i%len(rs)])
		i++
	}
}

// BenchmarkObserveRuns counts responses as keep-alive and HTTP/2 connections bring them: runs
// of 5 from one client, 1,000 clients, 100 paths.
func BenchmarkObserveRuns(b *testing.B) {
	c := New(Config{Country: func(netip.Addr) string { return "NL" }})
	rs := make([]Response, 5000)
	for i := range rs {
		v := i / 5
		rs[i] = Response{Site: "blog", Path: fmt.Sprintf("/p/%d", i%100), Remote: fmt.Sprintf("10.0.%d.%d:1", v/250, v%250), Status: 200, Bytes: 1000}
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		c.Observe(rs[i%len(rs)])
		i++
	}
}
