package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dt-cdn/dt/challenge"
	"github.com/dt-cdn/dt/dt"
	"github.com/dt-cdn/dt/edge"
	"github.com/dt-cdn/dt/internal/cli"
	"github.com/dt-cdn/dt/internal/testkit/testnet"
	"github.com/dt-cdn/dt/internal/testkit/wait"
	"github.com/dt-cdn/dt/netconf"
	"github.com/dt-cdn/dt/redirector"
)

// dnsAnswer is a DNS answer reduced to what the CDN zone's tests compare.
type dnsAnswer struct {
	rcode     int
	addrs     []string // A and AAAA, sorted
	txt       []string
	owners    []string // answer owner names as sent
	authority []uint16 // types in the authority section
}

func askDNS(addr, network, name string, qtype uint16) (dnsAnswer, error) {
	q := new(dns.Msg)
	q.SetQuestion(name, qtype)
	r, _, err := (&dns.Client{Net: network, Timeout: 2 * time.Second}).Exchange(q, addr)
	if err != nil {
		return dnsAnswer{}, err
	}
	if len(r.Question) != 1 || r.Question[0].Name != name {
		return dnsAnswer{}, fmt.Errorf("question came back as %v", r.Question)
	}
	if !r.Authoritative && r.Rcode != dns.RcodeRefused {
		return dnsAnswer{}, fmt.Errorf("%s %s: not authoritative", name, dns.TypeToString[qtype])
	}
	a := dnsAnswer{rcode: r.Rcode}
	for _, rr := range r.Answer {
		a.owners = append(a.owners, rr.Header().Name)
		switch v := rr.(type) {
		case *dns.A:
			a.addrs = append(a.addrs, v.A.String())
		case *dns.AAAA:
			a.addrs = append(a.addrs, v.AAAA.String())
		case *dns.TXT:
			a.txt = append(a.txt, v.Txt...)
		}
	}
	for _, rr := range r.Ns {
		a.authority = append(a.authority, rr.Header().Rrtype)
	}
	slices.Sort(a.addrs)
	return a, nil
}

// TestCDNZone runs three edges (two sharing a name), a dt dns node with --cdn-ns and two
// sites, sets the CDN zone, and asks the node over UDP and TCP for every kind of name under it:
// edges by name and by derived label, sites (GeoDNS), a site on an edge, a preview, the apex's
// SOA and NS, CAA, ACME challenges in the CDN zone and in a published zone, with a mixed-case
// query kept as asked; then crashes an edge, whose names lose their address.
func TestCDNZone(t *testing.T) {
	n, keysDir := newKeyedNetwork(t, 100*time.Millisecond)
	named := func(name, v4, v6 string) func(*edge.Config) {
		return func(c *edge.Config) {
			c.Name, c.IPv4 = name, netip.MustParseAddr(v4)
			if v6 != "" {
				c.IPv6 = netip.MustParseAddr(v6)
			}
		}
	}
	ams := startEdgeNode(t, n.plain, n.peer, n.beat, amsterdam, named("AMS", "192.0.2.1", "2001:db8::1"))
	nyc1 := startEdgeNode(t, n.plain, n.peer, n.beat, newYork, named("nyc", "192.0.2.2", ""))
	nyc2 := startEdgeNode(t, n.plain, n.peer, n.beat, newYork, named("nyc", "192.0.2.3", ""))
	ready := runCLI(t, "dns", "--keys", keysDir, "--data", t.TempDir(), "--peer", n.peer, "--local", "--no-sync",
		"--log-level", "warn", "--dns", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--heartbeat-interval", n.beat.String(),
		"--cdn-ns", "ns1.example.com", "--cdn-ns", "NS2.example.net.")
	var info cli.NodeInfo
	select {
	case info = <-ready:
	case <-time.After(30 * time.Second):
		t.Fatal("dt dns did not start")
	}
	addr := dnsAddr(t, info.Admin)

	def := n.publishFiles(map[string]string{"index.html": "<h1>main</h1>"}, 3)
	master := testnet.Node(t, testnet.Options{Keys: n.keys, Master: true, Peers: []string{n.peer}})
	testnet.Drain(master)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	putSite(t, ctx, master, "blog", []string{"blog.example.com"}, map[string]string{"/index.html": "<h1>blog</h1>"})
	settings, _ := netconf.Settings{V: netconf.Version, CDNZone: "cdn.example.com"}.Marshal()
	value := strings.Repeat("x", 43)
	apexChallenge, _ := challenge.NewDNS01("cdn.example.com", []string{value}, time.Now().Add(time.Hour))
	wwwChallenge, _ := challenge.NewDNS01("www.example.com", []string{value}, time.Now().Add(time.Hour))
	b1, _ := apexChallenge.Marshal()
	b2, _ := wwwChallenge.Marshal()
	if err := master.PutMany(ctx, []string{netconf.Key, challenge.DNS01Key("cdn.example.com"), challenge.DNS01Key("www.example.com")},
		[][]byte{settings, b1, b2}); err != nil {
		t.Fatal(err)
	}
	publishZone(t, keysDir, n.peer, "$ORIGIN example.com.\n$TTL 300\n@ SOA ns1 hostmaster 1 7200 900 1209600 60\n@ NS ns1\nns1 A 192.0.2.53\nwww A 192.0.2.80\n")

	expect := func(name string, qtype uint16, check func(dnsAnswer) error) {
		t.Helper()
		wait.For(t, 20*time.Second, func() error {
			for _, network := range []string{"udp", "tcp"} {
				a, err := askDNS(addr, network, name, qtype)
				if err != nil {
					return err
				}
				if err := check(a); err != nil {
					return fmt.Errorf("%s %s over %s: %+v: %w", name, dns.TypeToString[qtype], network, a, err)
				}
			}
			return nil
		})
	}
	addrs := func(want ...string) func(dnsAnswer) error {
		return func(a dnsAnswer) error {
			if a.rcode != dns.RcodeSuccess || !slices.Equal(a.addrs, want) {
				return fmt.Errorf("want %v", want)
			}
			return nil
		}
	}
	negative := func(rcode int) func(dnsAnswer) error {
		return func(a dnsAnswer) error {
			if a.rcode != rcode || len(a.owners) != 0 || !slices.Equal(a.authority, []uint16{dns.TypeSOA}) {
				return fmt.Errorf("want %s with the SOA alone", dns.RcodeToString[rcode])
			}
			return nil
		}
	}
	all := []string{"192.0.2.1", "192.0.2.2", "192.0.2.3"}
	expect("blog.cdn.example.com.", dns.TypeA, addrs(all...))
	expect("default.cdn.example.com.", dns.TypeA, addrs(all...))
	expect("ams.cdn.example.com.", dns.TypeA, addrs("192.0.2.1"))
	expect("ams.cdn.example.com.", dns.TypeAAAA, addrs("2001:db8::1"))
	expect("AmS.CDN.example.COM.", dns.TypeA, func(a dnsAnswer) error {
		if !slices.Equal(a.owners, []string{"AmS.CDN.example.COM."}) {
			return fmt.Errorf("owner names %v, want the query's case", a.owners)
		}
		return nil
	})
	nyc1Label := "e-" + nyc1.id.String()[:12]
	expect(nyc1Label+".cdn.example.com.", dns.TypeA, addrs("192.0.2.2"))
	expect("nyc.cdn.example.com.", dns.TypeA, negative(dns.RcodeNameError))
	expect("nyc.cdn.example.com.", dns.TypeAAAA, negative(dns.RcodeNameError))
	expect(nyc1Label+".cdn.example.com.", dns.TypeAAAA, negative(dns.RcodeSuccess))
	expect("blog--ams.cdn.example.com.", dns.TypeA, addrs("192.0.2.1"))
	expect("blog--"+nyc1Label+".cdn.example.com.", dns.TypeA, addrs("192.0.2.2"))
	expect("blog--nowhere.cdn.example.com.", dns.TypeA, negative(dns.RcodeNameError))
	expect("docs--ams.cdn.example.com.", dns.TypeA, negative(dns.RcodeNameError))
	expect("nosuch.cdn.example.com.", dns.TypeA, negative(dns.RcodeNameError))
	expect(def.Deploy.String()[:12]+"--default.cdn.example.com.", dns.TypeA, addrs(all...))
	expect("blog.cdn.example.com.", dns.TypeCAA, negative(dns.RcodeSuccess))
	expect("cdn.example.com.", dns.TypeCAA, negative(dns.RcodeSuccess))
	expect("cdn.example.com.", dns.TypeNS, func(a dnsAnswer) error {
		if len(a.owners) != 2 {
			return fmt.Errorf("want two NS")
		}
		return nil
	})
	expect("cdn.example.com.", dns.TypeSOA, func(a dnsAnswer) error {
		if len(a.owners) != 1 {
			return fmt.Errorf("want the SOA")
		}
		return nil
	})
	for _, name := range []string{"_acme-challenge.cdn.example.com.", "_acme-challenge.WwW.example.com."} {
		expect(name, dns.TypeTXT, func(a dnsAnswer) error {
			if !slices.Equal(a.txt, []string{value}) || a.owners[0] != name {
				return fmt.Errorf("want %s", value)
			}
			return nil
		})
	}
	expect("_acme-challenge.blog.cdn.example.com.", dns.TypeTXT, negative(dns.RcodeNameError))
	expect("www.example.com.", dns.TypeA, addrs("192.0.2.80"))

	// The redirector sends a visitor of blog to blog--<edge>.<zone> on the edge's port, which
	// the edge serves as blog.
	rd := n.startRedirector(redirector.Config{HeartbeatInterval: n.beat, Code: 302})
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	wait.For(t, 20*time.Second, func() error {
		req, _ := http.NewRequest("GET", rd.url+"/index.html", nil)
		req.Host = "blog.example.com"
		resp, err := noFollow.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		loc, err := url.Parse(resp.Header.Get("Location"))
		if err != nil || !strings.HasPrefix(loc.Hostname(), "blog--") || !strings.HasSuffix(loc.Hostname(), ".cdn.example.com") {
			return fmt.Errorf("redirected to %q", resp.Header.Get("Location"))
		}
		for _, e := range []*runningEdge{ams, nyc1, nyc2} {
			if strings.HasSuffix(e.url, ":"+loc.Port()) {
				if r := getHost(t, e.url+loc.Path, loc.Host); r.status != 200 || r.body != "<h1>blog</h1>" {
					return fmt.Errorf("%s at %s: %+v", loc, e.url, r)
				}
				return nil
			}
		}
		return fmt.Errorf("redirected to %s, the port of no edge", loc)
	})

	ams.crash()
	expect("ams.cdn.example.com.", dns.TypeA, negative(dns.RcodeSuccess))
	expect("blog--ams.cdn.example.com.", dns.TypeA, negative(dns.RcodeSuccess))
	expect("blog.cdn.example.com.", dns.TypeA, addrs("192.0.2.2", "192.0.2.3"))

	var status struct {
		CDNZone      string              `json:"cdn_zone"`
		EdgeLabels   map[string]string   `json:"edge_labels"`
		SharedLabels map[string][]string `json:"shared_labels"`
	}
	getJSON(t, "http://"+info.Admin+"/dns", &status)
	if status.CDNZone != "cdn.example.com" || status.EdgeLabels[nyc1.id.String()] != nyc1Label || len(status.SharedLabels["nyc"]) != 2 {
		t.Errorf("/dns: %+v", status)
	}
}

// newKeyedNetwork is newTestNetwork with its keys in a directory, for commands run in-process.
func newKeyedNetwork(t *testing.T, beat time.Duration) (*testNetwork, string) {
	dir := filepath.Join(t.TempDir(), "keys")
	if err := dt.GenerateKeys(dir, nil); err != nil {
		t.Fatal(err)
	}
	keys, err := dt.LoadKeys(dir)
	if err != nil {
		t.Fatal(err)
	}
	plain := keys
	plain.Master = nil
	n := &testNetwork{t: t, keys: keys, plain: plain, beat: beat}
	hub := n.open(true, nil, false)
	testnet.Drain(hub)
	n.peer = testnet.Addr(hub)
	return n, dir
}

// dnsAddr waits for the DNS node's /dns at admin and returns the address it answers on.
func dnsAddr(t *testing.T, admin string) string {
	var status struct {
		Addr string `json:"addr"`
	}
	wait.For(t, 10*time.Second, func() error { return fetchJSON("http://"+admin+"/dns", &status) })
	return status.Addr
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	if err := fetchJSON(url, v); err != nil {
		t.Fatal(err)
	}
}

func fetchJSON(url string, v any) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// publishZone publishes a zone file's text with dt dns-publish.
func publishZone(t *testing.T, keysDir, peer, text string) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "zone")
	if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errOut strings.Builder
	if code := cli.Run(context.Background(), []string{"dns-publish", "--keys", keysDir, "--peer", peer, "--cache-dir", t.TempDir(), file},
		&cli.Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errOut}); code != 0 {
		t.Fatalf("dns-publish: %d %s%s", code, out.String(), errOut.String())
	}
}
