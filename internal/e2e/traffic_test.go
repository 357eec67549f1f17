package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/dt-cdn/dt/edge"
	"github.com/dt-cdn/dt/internal/testkit/wait"
	"github.com/dt-cdn/dt/redirector"
	"github.com/dt-cdn/dt/trafficseries"
)

// screenshotEnv names a file the traffic test writes a screenshot of the dashboard to
// (docs/dashboard-traffic.png is made so).
const screenshotEnv = "DT_SCREENSHOT"

// TestTrafficChartsInBrowser: two edges that send their statistics every 200 ms serve known
// traffic; the redirector's /api/stats adds it up, and a real browser draws it on the dashboard:
// a line per edge, the status classes, the top pages and referrers; more traffic shows up
// without a reload; the page has no console errors (the browser's cleanup checks).
func TestTrafficChartsInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a browser and a network")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	b := startBrowser(t, ctx)
	n := newTestNetwork(t, time.Second)
	fast := func(c *edge.Config) { c.StatsInterval = 200 * time.Millisecond }
	edges := []*runningEdge{startEdgeNode(t, n.plain, n.peer, n.beat, amsterdam, fast), startEdgeNode(t, n.plain, n.peer, n.beat, newYork, fast)}
	rd := n.startRedirector(redirector.Config{HeartbeatInterval: time.Second, RedirectFlushInterval: 200 * time.Millisecond})
	n.publishFiles(map[string]string{"index.html": "<h1>home</h1>", "about.html": "<h1>about</h1>"}, 2)

	get := func(url, referer string) {
		t.Helper()
		req, _ := http.NewRequest("GET", url, nil)
		req.Header.Set("Referer", referer)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	sent := 0
	visit := func(rounds int) {
		for range rounds {
			for i, e := range edges {
				get(e.url+"/", "https://news.example/")
				get(e.url+"/about.html", "https://blog.example/")
				get(e.url+fmt.Sprintf("/missing-%d", i), "")
				sent += 3
			}
		}
	}
	visit(5)
	redirected := sendVisitors(t, rd, 6)
	waitStats := func(want int) {
		t.Helper()
		wait.For(t, 20*time.Second, func() error {
			resp, err := http.Get(rd.admin + "/api/stats?site=default&since=1h")
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			var r trafficseries.Result
			if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
				return err
			}
			if r.Total.Requests != uint64(want) || len(r.Edges) != 2 {
				return fmt.Errorf("api/stats: %d requests from %d edges, want %d from 2", r.Total.Requests, len(r.Edges), want)
			}
			var sentTo uint64
			for _, rc := range r.Redirects {
				sentTo += rc.N
			}
			if sentTo != redirected || len(r.Redirects) == 0 || r.Redirects[0].Reason != "no client geo" {
				return fmt.Errorf("api/stats: redirects %+v, want %d visitors sent for want of GeoIP", r.Redirects, redirected)
			}
			return nil
		})
	}
	waitStats(sent)

	tab := b.ctx
	b.do(tab, 20*time.Second, "dashboard draws the traffic", chromedp.Navigate(rd.admin+"/"),
		chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`#traffic[data-requests="%d"]`, sent))),
		chromedp.WaitVisible(chromedp.CSS(`#traffic-requests polyline:nth-of-type(2)`)),
		chromedp.WaitVisible(chromedp.CSS(`#traffic-bytes polyline`)),
		chromedp.WaitVisible(chromedp.CSS(`#traffic-status rect[data-class="2xx"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#traffic-status rect[data-class="4xx"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#traffic-paths tr[data-key="/about.html"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#traffic-referrers tr[data-key="https://news.example/"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#traffic-countries tr[data-key="unknown"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#traffic-redirects tr[data-reason="no client geo"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#traffic-redirects-chart polyline`)))
	if path := os.Getenv(screenshotEnv); path != "" {
		png, err := chromedp.Run(tab, chromedp.FullScreenshot(100)) // quality 100: PNG
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// More traffic reaches the open page at its next refresh.
	visit(2)
	redirected += sendVisitors(t, rd, 2)
	waitStats(sent)
	b.do(tab, 30*time.Second, "dashboard updates live",
		chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`#traffic[data-requests="%d"]`, sent))))
}

// sendVisitors asks the redirector n times for the site, as visitors do before they reach an
// edge, and returns how many it redirected.
func sendVisitors(t *testing.T, rd *runningRedirector, n int) uint64 {
	t.Helper()
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	defer c.CloseIdleConnections()
	var redirected uint64
	for range n {
		resp, err := c.Get(rd.url + "/about.html")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode/100 == 3 {
			redirected++
		}
	}
	if redirected != uint64(n) {
		t.Fatalf("the redirector redirected %d of %d visitors", redirected, n)
	}
	return redirected
}
