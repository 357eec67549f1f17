package edge

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/dt-cdn/dt/accesslog"
	"github.com/dt-cdn/dt/static"
	"github.com/dt-cdn/dt/trafficstats"
)

// benchTraffic is a stream of requests as a server hands them to the handler, one request
// value refilled for each as a server reuses its buffers: 1,000 distinct paths, 5,000 distinct
// clients over 500 /24s, a browser's User-Agent, one in three with one of 50 Referers.
type benchTraffic struct {
	r                         http.Request
	plain, referred           http.Header
	paths, remotes, referrers []string
	i                         int
}

func newBenchTraffic() *benchTraffic {
	t := &benchTraffic{r: http.Request{Method: "GET", Host: "blog.example", Proto: "HTTP/2.0", URL: &url.URL{},
		TLS: &tls.ConnectionState{Version: tls.VersionTLS13}}}
	ua := "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
	t.plain, t.referred = http.Header{"User-Agent": {ua}}, http.Header{"User-Agent": {ua}, "Referer": {""}}
	for i := range 1000 {
		t.paths = append(t.paths, fmt.Sprintf("/blog/2026/post-%d/index.html", i))
	}
	for i := range 5000 {
		t.remotes = append(t.remotes, fmt.Sprintf("203.%d.%d.%d:%d", i/2500, i%2500/10, i%10, 40000+i))
	}
	for i := range 50 {
		t.referrers = append(t.referrers, fmt.Sprintf("https://news.example/item?id=%d", i))
	}
	return t
}

// next refills the request with the stream's next one.
func (t *benchTraffic) next() *http.Request {
	t.i++
	r := &t.r
	r.RequestURI, r.RemoteAddr = t.paths[t.i*7%len(t.paths)], t.remotes[t.i*13%len(t.remotes)]
	r.URL.Path = r.RequestURI
	r.Header = t.plain
	if t.i%3 == 0 {
		r.Header = t.referred
		r.Header["Referer"][0] = t.referrers[t.i%len(t.referrers)]
	}
	return r
}

// BenchmarkLogAndCount measures what an edge pays for one response logged (JSON lines to a
// file) and counted in the statistics, on the request's goroutine and off it: cpu-ns/op is the
// process's CPU time (the writer's included) per response, which is what the edge's cores lose.
// Each response also takes about a microsecond of other work, as serving it would, so that
// the writer runs between responses as it does on an edge rather than racing a tight loop.
// "none" is that work, the benchmark's own cost (refilling the request) and the load report's,
// to subtract; "log" and "count" each half alone.
func BenchmarkLogAndCount(b *testing.B) {
	for _, v := range []struct {
		name       string
		log, count bool
	}{{"none", false, false}, {"log", true, false}, {"count", false, true}, {"both", true, true}} {
		b.Run(v.name, func(b *testing.B) { benchLogAndCount(b, v.log, v.count) })
	}
}

func benchLogAndCount(b *testing.B, log, count bool) {
	l, err := accesslog.New(accesslog.Config{Path: filepath.Join(b.TempDir(), "access.log")})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	c := trafficstats.New(trafficstats.Config{Country: func(netip.Addr) string { return "NL" }})
	cfg := AccountingConfig{}
	if log {
		cfg.AccessLog = l
	}
	if count {
		cfg.Stats = c
	}
	a, err := NewAccounting(cfg)
	if err != nil {
		b.Fatal(err)
	}
	tr := newBenchTraffic()
	ri := static.ResponseInfo{Status: 200, Bytes: 1024, Encoding: "gzip", Duration: 30 * time.Microsecond, End: time.Now()}
	b.ReportAllocs()
	cpu0 := cpuTime()
	x := uint64(1)
	for b.Loop() {
		x = serveWork(x)
		a.ObserveRequest(tr.next(), "blog", ri)
	}
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
	st := l.Stats()
	b.ReportMetric(float64(st.QueueFull)/float64(b.N), "dropped/op")
	if x == 0 {
		b.Log(x) // keeps the work from being optimised away
	}
}

// serveWork stands for the rest of serving a response: about a microsecond of arithmetic.
func serveWork(x uint64) uint64 {
	for range 1000 {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
	}
	return x
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		panic(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
