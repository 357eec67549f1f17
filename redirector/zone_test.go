package redirector

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dt-cdn/dt/edgeset"
	"github.com/dt-cdn/dt/heartbeat"
	"github.com/dt-cdn/dt/internal/testkit/testnet"
	"github.com/dt-cdn/dt/internal/testkit/wait"
	"github.com/dt-cdn/dt/netconf"
	"github.com/dt-cdn/dt/site"
)

// TestServiceCDNZone runs a redirector on a dt network of two sites and one edge: without a CDN
// zone a visitor goes to the edge's public URL, and so while the edge's heartbeats do not report
// the zone the settings name; once they do, to "<site>--<edge>.<zone>" with the URL's scheme and
// port, and /explain names that target.
func TestServiceCDNZone(t *testing.T) {
	const beat = 100 * time.Millisecond
	keys, plain := testnet.Keys(t)
	rnode := testnet.Node(t, testnet.Options{Keys: plain, Listen: true})
	addr := []string{rnode.Addrs()[0].String()}
	master := testnet.Node(t, testnet.Options{Keys: keys, Master: true, Peers: addr})
	testnet.Drain(master)
	put := func(key string, v any) {
		t.Helper()
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if err := master.Put(context.Background(), key, b); err != nil {
			t.Fatal(err)
		}
	}
	def, blog := site.DeployIDOf([]byte("default")), site.DeployIDOf([]byte("blog"))
	put(site.CurrentKey, site.Current{Deploy: def, Time: time.Now()})
	put(site.RecordKey("blog"), site.Record{V: 1, Name: "blog", Hosts: []string{"blog.example.com"}})
	put(site.CurrentKeyOf("blog"), site.Current{Deploy: blog, Time: time.Now()})

	var reported atomic.Pointer[string] // the zone the edge's heartbeats report
	none := ""
	reported.Store(&none)
	knows := `,"current_digest":"` + heartbeat.CurrentsDigest(map[string]string{site.DefaultSite: def.String(), "blog": blog.String()}) + `"`
	n := testnet.Node(t, testnet.Options{Keys: plain, Peers: addr})
	testnet.Drain(n)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		heartbeat.Send(ctx, siteFields{node: n, fields: `"sites":2,"sites_digest":"0123456789abcdef"` + knows}, beat, func(h *heartbeat.Heartbeat) {
			h.Name, h.PublicURL, h.Deploy, h.Synced = "AMS", "http://ams.example.net:8080", def.String(), true
			h.CDNZone = *reported.Load()
		}, nil)
	}()
	t.Cleanup(func() { cancel(); <-done })

	svc, err := NewService(ServiceConfig{Node: rnode, HeartbeatInterval: beat, Code: 302,
		Probe: func(context.Context, heartbeat.Edge) error { return nil }})
	if err != nil {
		t.Fatal(err)
	}
	rctx, rcancel := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() { runDone <- svc.Run(rctx) }()
	go func() {
		for ev := range rnode.Events() {
			svc.HandleEvent(ev)
		}
	}()
	t.Cleanup(func() { rcancel(); <-runDone })
	front := httptest.NewServer(svc.Handler())
	t.Cleanup(front.Close)
	admin := httptest.NewServer(svc.Explain())
	t.Cleanup(admin.Close)

	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	sentTo := func(host string) (string, error) {
		req, _ := http.NewRequest("GET", front.URL+"/p/a.html?q=1", nil)
		req.Host = host
		resp, err := client.Do(req)
		if err != nil {
			return "", err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusFound {
			return "", fmt.Errorf("Host %s: %s", host, resp.Status)
		}
		return resp.Header.Get("Location"), nil
	}
	expect := func(host, want string) {
		t.Helper()
		wait.For(t, 10*time.Second, func() error {
			got, err := sentTo(host)
			if err != nil {
				return err
			}
			if got != want {
				return fmt.Errorf("Host %s sent to %s, want %s", host, got, want)
			}
			return nil
		})
	}
	expect("www.example.org", "http://ams.example.net:8080/p/a.html?q=1")
	expect("blog.example.com", "http://ams.example.net:8080/p/a.html?q=1")

	settings, _ := netconf.Settings{V: netconf.Version, CDNZone: "cdn.example.com"}.Marshal()
	if err := master.Put(context.Background(), netconf.Key, settings); err != nil {
		t.Fatal(err)
	}
	wait.For(t, 10*time.Second, func() error {
		if svc.Zone() != "cdn.example.com" {
			return fmt.Errorf("zone %q", svc.Zone())
		}
		return nil
	})
	// An edge whose heartbeats do not report the zone (an earlier release) keeps its URL.
	expect("blog.example.com", "http://ams.example.net:8080/p/a.html?q=1")
	zone := "cdn.example.com"
	reported.Store(&zone)
	expect("blog.example.com", "http://blog--ams.cdn.example.com:8080/p/a.html?q=1")
	expect("www.example.org", "http://default--ams.cdn.example.com:8080/p/a.html?q=1")

	resp, err := http.Get(admin.URL + "/?ip=192.0.2.1&host=blog.example.com")
	if err != nil {
		t.Fatal(err)
	}
	var x struct {
		Target string `json:"target"`
	}
	err = json.NewDecoder(resp.Body).Decode(&x)
	resp.Body.Close()
	if err != nil || x.Target != "http://blog--ams.cdn.example.com:8080" {
		t.Errorf("explain: target %q, %v", x.Target, err)
	}

	if err := master.Delete(context.Background(), netconf.Key); err != nil {
		t.Fatal(err)
	}
	expect("blog.example.com", "http://ams.example.net:8080/p/a.html?q=1")
}

// TestOriginNeedsCertificateForZoneName: an https edge gets visitors by the zone's name only
// while it reports a valid certificate covering it; otherwise at its own URL.
func TestOriginNeedsCertificateForZoneName(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	h, err := NewHandler(HandlerConfig{Edges: func() ([]heartbeat.Edge, string) { return nil, "" },
		Zone: func() string { return "cdn.example.com" }, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	e := heartbeat.Edge{Node: "aaaa", Last: heartbeat.Heartbeat{Name: "ams", CDNZone: "cdn.example.com"}}
	tg := target{edges: []heartbeat.Edge{e}, site: edgeset.Site{Name: "blog"}}
	c := &edgeset.Candidate{Edge: &tg.edges[0], URL: "https://ams.example.net"}
	for _, tc := range []struct {
		certs *heartbeat.Certs
		want  string
	}{
		{nil, "https://ams.example.net"},
		{&heartbeat.Certs{N: 1, Names: []heartbeat.CertName{{Name: "ams.example.net", Exp: now.Unix() + 3600}}}, "https://ams.example.net"},
		{&heartbeat.Certs{N: 1, Names: []heartbeat.CertName{{Name: "*.cdn.example.com", Exp: now.Unix() - 1}}}, "https://ams.example.net"},
		{&heartbeat.Certs{N: 1, Names: []heartbeat.CertName{{Name: "*.cdn.example.com", Exp: now.Unix() + 3600}}}, "https://blog--ams.cdn.example.com"},
	} {
		tg.edges[0].Last.Certs = tc.certs
		if got := h.origin(c, tg); got != tc.want {
			t.Errorf("certs %+v: origin %s, want %s", tc.certs, got, tc.want)
		}
	}
}
