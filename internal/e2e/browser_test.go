package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/dt-cdn/dt/internal/testkit/testcert"
	"github.com/dt-cdn/dt/internal/testkit/testnet"
	"github.com/dt-cdn/dt/issuer"
	"github.com/dt-cdn/dt/netcert"
	"github.com/dt-cdn/dt/redirector"
	"github.com/dt-cdn/dt/site"
)

// requireBrowser is the environment variable that turns a missing browser from a skip into a
// failure (CI sets it, after installing chromium).
const requireBrowser = "DT_REQUIRE_BROWSER"

// chromiumPath finds Debian's chromium, or skips the test (fails it under DT_REQUIRE_BROWSER=1).
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"/usr/bin/chromium", "chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv(requireBrowser) == "1" {
		t.Fatalf("%s=1 but chromium is not installed (apt-get install chromium)", requireBrowser)
	}
	t.Skipf("chromium is not installed (apt-get install chromium); %s=1 makes this a failure", requireBrowser)
	return ""
}

// browser is a headless chromium, closed at the end of the test. Page exceptions and security
// messages (a Content-Security-Policy refusal) are collected from every tab it opens.
type browser struct {
	t   *testing.T
	ctx context.Context // the first tab; the browser lives as long as it

	mu       sync.Mutex
	problems []string // guarded by mu
	watchers sync.WaitGroup
}

func startBrowser(t *testing.T, parent context.Context) *browser {
	path := chromiumPath(t)
	// The flags that keep a headless chromium quiet on a closed network: without those that stop
	// background networking it stalls on requests that never complete.
	alloc, cancelAlloc := chromedp.NewExecAllocator(parent,
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1280, 1024),
	)
	ctx, cancelTab := chromedp.NewContext(alloc)
	b := &browser{t: t, ctx: ctx}
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc() // waits for the browser process to exit
		b.watchers.Wait()
		for _, p := range b.problems {
			t.Errorf("page: %s", p)
		}
	})
	b.watch(ctx)
	return b
}

// tab opens another tab.
func (b *browser) tab() context.Context {
	ctx, cancel := chromedp.NewContext(b.ctx)
	b.t.Cleanup(cancel)
	b.watch(ctx)
	return ctx
}

// watch collects the problems a tab's console reports until the tab closes.
func (b *browser) watch(tab context.Context) {
	messages := chromedp.Console(tab)
	b.watchers.Go(func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.IsException() || m.Source == "security" {
				b.mu.Lock()
				b.problems = append(b.problems, m.String())
				b.mu.Unlock()
			}
		}
	})
}

// run runs actions in tab, failing the test after timeout.
func (b *browser) do(tab context.Context, timeout time.Duration, what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(tab, timeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

// visit navigates tab to url and returns where it landed and the text of the page's #site.
func (b *browser) visit(tab context.Context, url string) (location, text string) {
	b.t.Helper()
	b.do(tab, 20*time.Second, "visit "+url, chromedp.Navigate(url), chromedp.WaitVisible(chromedp.CSS("#site")))
	location, err := chromedp.Run(tab, chromedp.Location())
	if err != nil {
		b.t.Fatal(err)
	}
	text, err = chromedp.Run(tab, chromedp.Text(chromedp.CSS("#site")))
	if err != nil {
		b.t.Fatal(err)
	}
	return location, text
}

// TestDashboardAndRedirectsInBrowser drives a real browser against a running test network: the
// dashboard shows both edges alive, on the table and the map; a navigation through the
// redirector lands on an edge; that edge is killed and turns dead on the page; a second
// navigation through the redirector lands on the other edge. A second site, added by a master,
// shows beside the first on the page. The redirector answers 301, which a
// browser caches unless told not to: landing elsewhere shows that the redirect was not cached.
func TestDashboardAndRedirectsInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a browser and a network")
	}
	began := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	b := startBrowser(t, ctx)

	const beat = time.Second // fast, so the test waits seconds for a death, not the default's 6+
	n := newTestNetwork(t, beat)
	edges := []*runningEdge{n.startEdge(amsterdam), n.startEdge(newYork)}
	rd := n.startRedirector(redirector.Config{HeartbeatInterval: beat, Code: 301})
	dashURL := rd.admin + "/"
	const page = "served by dt"
	res := n.publishFiles(map[string]string{"index.html": `<!doctype html><title>e2e</title><h1 id="site">` + page + `</h1>`}, 2)
	t.Logf("network up and published in %s", time.Since(began).Round(time.Millisecond))

	// The dashboard lists both edges, alive, with a dot each on the map, and the deploy.
	row := func(e *runningEdge, state string) chromedp.CSS {
		return chromedp.CSS(fmt.Sprintf(`#edges tr[data-node="%s"][data-state="%s"]`, e.id, state))
	}
	dot := func(e *runningEdge, state string) chromedp.CSS {
		return chromedp.CSS(fmt.Sprintf(`#dots g[data-node="%s"] circle.%s`, e.id, state))
	}
	dashTab := b.ctx
	b.do(dashTab, 20*time.Second, "dashboard shows the edges alive", chromedp.Navigate(dashURL),
		chromedp.WaitVisible(row(edges[0], "alive")), chromedp.WaitVisible(row(edges[1], "alive")),
		chromedp.WaitVisible(dot(edges[0], "alive")), chromedp.WaitVisible(dot(edges[1], "alive")),
		chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`#deploys tr[data-deploy="%s"][data-current="true"]`, res.Deploy))),
		chromedp.WaitVisible(chromedp.CSS(`#conn[data-state="live"]`)))
	for _, e := range edges {
		text, err := chromedp.Run(dashTab, chromedp.Text(row(e, "alive")))
		if err != nil {
			t.Fatal(err)
		}
		if host := strings.TrimPrefix(e.url, "http://"); !strings.Contains(text, host) {
			t.Errorf("the row of %s reads %q", host, text)
		}
	}

	// A second site: the page lists both, each with its hosts and current deploy, the default
	// one served by both edges.
	master := testnet.Node(t, testnet.Options{Keys: n.keys, Master: true, Peers: []string{n.peer}})
	testnet.Drain(master)
	record, err := site.Record{V: 1, Name: "blog", Hosts: []string{"blog.example.com"}}.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	pointer, err := site.Current{Deploy: res.Deploy, Time: time.Now()}.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	for key, body := range map[string][]byte{site.RecordKey("blog"): record, site.CurrentKeyOf("blog"): pointer} {
		if err := master.Put(ctx, key, body); err != nil {
			t.Fatal(err)
		}
	}
	siteRow := func(name string) chromedp.CSS { return chromedp.CSS(fmt.Sprintf(`#sites tr[data-site="%s"]`, name)) }
	b.do(dashTab, 20*time.Second, "dashboard shows two sites",
		chromedp.WaitVisible(chromedp.CSS(`#sites tr[data-site="default"][data-serving="2"]`)), chromedp.WaitVisible(siteRow("blog")))
	for name, want := range map[string]string{"default": "every host no other site claims", "blog": "blog.example.com"} {
		text, err := chromedp.Run(dashTab, chromedp.Text(siteRow(name)))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(text, want) || !strings.Contains(text, res.Deploy.String()[:12]) {
			t.Errorf("the row of site %s reads %q", name, text)
		}
	}

	// A certificate written to the table: the page lists it with its issuer; the plain-HTTP
	// edges report no certificates, so no edge serves it.
	ca := testcert.NewCA(t)
	chain, key := ca.Issue(t, time.Now().Add(-time.Hour), time.Now().Add(90*24*time.Hour), "www.example.com")
	sealer, err := netcert.NewSealer(n.keys.Network)
	if err != nil {
		t.Fatal(err)
	}
	certRec, err := netcert.NewRecord(chain, key, sealer, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	certBody, err := certRec.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if err := master.Put(ctx, certRec.TableKey(), certBody); err != nil {
		t.Fatal(err)
	}
	certRow := chromedp.CSS(`#certs tr[data-cert="www.example.com"][data-serving="0"]`)
	b.do(dashTab, 20*time.Second, "dashboard shows the certificate", chromedp.WaitVisible(certRow))
	if text, err := chromedp.Run(dashTab, chromedp.Text(certRow)); err != nil || !strings.Contains(text, "dt test CA") || !strings.Contains(text, "no edge") {
		t.Errorf("the certificate's row reads %q (%v)", text, err)
	}

	// The issuer's records: an error for the certificate, and a lease that has expired. The row
	// shows the error; the page says no issuer holds the lease.
	failedAt := time.Now().Add(-time.Minute).Unix()
	status := fmt.Sprintf(`{"v":1,"holder":"gone","updated":%d,"certs":[{"name":"www.example.com","names":["www.example.com"],"failures":1,"error":"acme: rate limited","last_attempt":%d}]}`, failedAt, failedAt)
	lease := fmt.Sprintf(`{"v":1,"holder":"gone","expires":%d}`, failedAt)
	if err := master.PutMany(ctx, []string{issuer.StatusKey, issuer.LeaseKey}, [][]byte{[]byte(status), []byte(lease)}); err != nil {
		t.Fatal(err)
	}
	b.do(dashTab, 20*time.Second, "dashboard says the issuer is down", chromedp.WaitVisible(chromedp.CSS(`#issuer-down`)))
	if text, err := chromedp.Run(dashTab, chromedp.Text(certRow)); err != nil || !strings.Contains(text, "acme: rate limited") {
		t.Errorf("the certificate's row with the issuer's error reads %q (%v)", text, err)
	}

	// A visit through the redirector lands on an edge.
	visitTab := b.tab()
	landedOn := func(location string) *runningEdge {
		for _, e := range edges {
			if strings.HasPrefix(location, e.url+"/") {
				return e
			}
		}
		t.Fatalf("landed on %s, not on an edge", location)
		return nil
	}
	location, text := b.visit(visitTab, rd.url+"/")
	first := landedOn(location)
	if text != page {
		t.Fatalf("the edge's page reads %q", text)
	}

	// Kill it: the dashboard turns it dead by itself (live updates, no reload).
	killed := time.Now()
	first.crash()
	b.do(dashTab, 20*time.Second, "dashboard shows the killed edge dead",
		chromedp.WaitVisible(row(first, "dead")), chromedp.WaitVisible(dot(first, "dead")))
	t.Logf("the page showed the killed edge dead %s after the kill (heartbeats every %s)", time.Since(killed).Round(time.Millisecond), beat)
	other := edges[0]
	if other == first {
		other = edges[1]
	}
	b.do(dashTab, 5*time.Second, "the other edge stays alive", chromedp.WaitVisible(row(other, "alive")))

	// The same visit again lands on the other edge.
	location, text = b.visit(visitTab, rd.url+"/")
	if got := landedOn(location); got != other || text != page {
		t.Fatalf("second visit landed on %s reading %q, want %s", location, text, other.url)
	}
	t.Logf("browser test took %s", time.Since(began).Round(time.Millisecond))
}
