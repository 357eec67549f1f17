package redirector

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dt-cdn/dt/dt"
	"github.com/dt-cdn/dt/heartbeat"
	"github.com/dt-cdn/dt/internal/testkit/promtest"
	"github.com/dt-cdn/dt/internal/testkit/testnet"
	"github.com/dt-cdn/dt/internal/testkit/wait"
	"github.com/dt-cdn/dt/site"
)

// siteFields is a Messenger that adds per-site fields to every heartbeat it sends, as an edge
// following every site does; with no fields it sends heartbeats as an edge of the previous
// release does.
type siteFields struct {
	node   *dt.Node
	fields string
}

func (m siteFields) SendMessage(ctx context.Context, v any) error {
	b, ok := v.(json.RawMessage)
	if ok && m.fields != "" {
		b = append(b[:len(b)-1:len(b)-1], ","+m.fields+"}"...)
		v = b
	}
	return m.node.SendMessage(ctx, v)
}

// TestServiceSites runs a redirector on a dt network with three sites (the implicit default
// site, blog and docs) and four edges: one serving every site, one lagging for blog, one lagging
// for docs and one of the previous release (a heartbeat without the per-site fields). Each Host
// goes only to the edges serving its site's current deploy; once the default site has a record
// of its own, a Host no site claims gets 421.
func TestServiceSites(t *testing.T) {
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
	def, blog, docs := site.DeployIDOf([]byte("default")), site.DeployIDOf([]byte("blog")), site.DeployIDOf([]byte("docs"))
	put(site.CurrentKey, site.Current{Deploy: def, Time: time.Now()})
	put(site.RecordKey("blog"), site.Record{V: 1, Name: "blog", Hosts: []string{"blog.example.com", "www.blog.example.com"}})
	put(site.CurrentKeyOf("blog"), site.Current{Deploy: blog, Time: time.Now()})
	put(site.RecordKey("docs"), site.Record{V: 1, Name: "docs", Hosts: []string{"*.docs.example.com"}})
	put(site.CurrentKeyOf("docs"), site.Current{Deploy: docs, Time: time.Now()})

	edge := func(name, fields string) {
		n := testnet.Node(t, testnet.Options{Keys: plain, Peers: addr})
		testnet.Drain(n)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			heartbeat.Send(ctx, siteFields{node: n, fields: fields}, beat, func(h *heartbeat.Heartbeat) {
				h.Name, h.PublicURL, h.Deploy, h.Synced = name, "http://"+name+".example.net", def.String(), true
			}, nil)
		}()
		t.Cleanup(func() { cancel(); <-done })
	}
	// Every edge reporting sites knows the three current deploys.
	knows := `,"current_digest":"` + heartbeat.CurrentsDigest(map[string]string{site.DefaultSite: def.String(), "blog": blog.String(), "docs": docs.String()}) + `"`
	edge("all", `"sites":3,"sites_digest":"0123456789abcdef"`+knows)
	edge("blog-lags", `"sites":3,"lagging":[{"site":"blog","deploy":"`+blog.String()[:12]+`"}],"sites_digest":"1123456789abcdef"`+knows)
	edge("docs-lags", `"sites":3,"lagging":[{"site":"docs","deploy":""}],"sites_digest":"2123456789abcdef"`+knows)
	edge("old", "")

	reg := prometheus.NewRegistry()
	svc, err := NewService(ServiceConfig{Node: rnode, HeartbeatInterval: beat, Code: 302, Registerer: reg,
		Probe: func(context.Context, heartbeat.Edge) error { return nil }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() { runDone <- svc.Run(ctx) }()
	go func() {
		for ev := range rnode.Events() {
			svc.HandleEvent(ev)
		}
	}()
	t.Cleanup(func() { cancel(); <-runDone })
	front := httptest.NewServer(svc.Handler())
	t.Cleanup(front.Close)
	admin := httptest.NewServer(svc.Explain())
	t.Cleanup(admin.Close)

	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	// edgesFor sends 40 requests for host and returns the edges they were sent to, or the status
	// of an answer that was not a redirect.
	edgesFor := func(host string) ([]string, int) {
		seen := map[string]bool{}
		for range 40 {
			req, _ := http.NewRequest("GET", front.URL+"/p/a.html?q=1", nil)
			req.Host = host
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusFound {
				return nil, resp.StatusCode
			}
			name, ok := strings.CutSuffix(strings.TrimPrefix(resp.Header.Get("Location"), "http://"), ".example.net/p/a.html?q=1")
			if !ok {
				t.Fatalf("Location %q", resp.Header.Get("Location"))
			}
			seen[name] = true
		}
		return slices.Sorted(maps.Keys(seen)), http.StatusFound
	}
	want := map[string][]string{
		"blog.example.com":     {"all", "docs-lags"},
		"WWW.Blog.Example.com": {"all", "docs-lags"},
		"api.docs.example.com": {"all", "blog-lags"},
		"example.org":          {"all", "blog-lags", "docs-lags", "old"}, // the implicit default site
		"docs.example.com":     {"all", "blog-lags", "docs-lags", "old"}, // the wildcard covers one label
	}
	wait.For(t, 10*time.Second, func() error {
		for host, edges := range want {
			if got, code := edgesFor(host); !slices.Equal(got, edges) {
				return fmt.Errorf("%s: sent to %v (status %d), want %v", host, got, code, edges)
			}
		}
		return nil
	})

	// /explain names the site and why each other edge was left out.
	resp, err := http.Get(admin.URL + "/?ip=192.0.2.1&host=blog.example.com")
	if err != nil {
		t.Fatal(err)
	}
	var x struct {
		Site, Deploy string
		Excluded     []struct{ Reason, Detail string }
	}
	err = json.NewDecoder(resp.Body).Decode(&x)
	resp.Body.Close()
	if err != nil || x.Site != "blog" || x.Deploy != blog.String() || len(x.Excluded) != 2 {
		t.Fatalf("explain: %+v, %v", x, err)
	}
	for _, ex := range x.Excluded {
		if ex.Reason != "lagging for the site" || ex.Detail == "" {
			t.Errorf("explain: %+v", ex)
		}
	}
	if resp, err := http.Get(admin.URL + "/?host=nowhere.example"); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK { // the implicit default site claims it
			t.Errorf("explain for an unclaimed host with a default site: %d", resp.StatusCode)
		}
	}
	st := svc.Status()
	if len(st.Sites) != 3 || st.Sites[0].Name != "blog" || len(st.Sites[0].Serving) != 2 || st.Sites[1].Name != "default" ||
		len(st.Sites[1].Serving) != 4 || st.Sites[2].Current != docs.String() {
		t.Errorf("status sites: %+v", st.Sites)
	}

	// The default site gets a record: it claims its hosts only, and an unclaimed Host gets 421.
	put(site.RecordKey(site.DefaultSite), site.Record{V: 1, Name: site.DefaultSite, Hosts: []string{"www.example.com"}})
	wait.For(t, 10*time.Second, func() error {
		if _, code := edgesFor("example.org"); code != http.StatusMisdirectedRequest {
			return fmt.Errorf("unclaimed host: status %d", code)
		}
		return nil
	})
	if got, _ := edgesFor("www.example.com"); !slices.Equal(got, want["example.org"]) {
		t.Errorf("default site's host sent to %v", got)
	}
	if got, _ := edgesFor("blog.example.com"); !slices.Equal(got, want["blog.example.com"]) {
		t.Errorf("blog after the default's record: sent to %v", got)
	}
	req, _ := http.NewRequest("GET", front.URL+"/", nil)
	req.Host = "unknown.example.org"
	resp, err = client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusMisdirectedRequest || resp.Header.Get("Location") != "" || !strings.Contains(string(body), "does not serve") {
		t.Errorf("421: %d %q %q", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	if n := promtest.Value(t, reg, "dt_redirector_misdirected_total"); n < 1 {
		t.Errorf("dt_redirector_misdirected_total %v", n)
	}
	if resp, err := http.Get(admin.URL + "/?host=unknown.example.org"); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusMisdirectedRequest {
			t.Errorf("explain for an unclaimed host: %d", resp.StatusCode)
		}
	}
}
