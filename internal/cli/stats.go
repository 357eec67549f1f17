package cli

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dt-cdn/dt/site"
	"github.com/dt-cdn/dt/trafficseries"
	"github.com/dt-cdn/dt/trafficstats"
)

// statsFlags are dt stats's flags.
type statsFlags struct {
	admin, site string
	since       time.Duration
	json        bool
	timeout     time.Duration
}

func runStats(ctx context.Context, args []string, env *Env) error {
	var f statsFlags
	fs := newFlagSet(env, "stats", "dt stats --admin ADDR [--site NAME] [--since 24h] [--json]",
		"Prints a site's traffic as the redirector keeps it from the edges' statistics: requests,\n"+
			"bytes, status classes, cache validations (304), unique visitors, top paths, referrers and\n"+
			"countries, the traffic per edge, and the redirects to each edge by reason. Minute points for ranges of up to a day, hourly\n"+
			"beyond, for up to 90 days.")
	fs.StringVar(&f.admin, "admin", "", "the redirector's admin listener, its --admin `ADDR`")
	fs.StringVar(&f.site, "site", "", "the site `NAME` (left out: the site of a network without site records)")
	fs.DurationVar(&f.since, "since", 24*time.Hour, "the range: the last `DURATION` (at most 2160h, 90 days)")
	fs.BoolVar(&f.json, "json", false, "print the series as JSON (the dashboard's /api/stats)")
	fs.DurationVar(&f.timeout, "timeout", 10*time.Second, "give up on the admin listener after `DURATION`")
	if err := fs.parse(args); err != nil {
		return err
	}
	if f.site == "" {
		f.site = site.DefaultSite
	}
	switch {
	case f.admin == "":
		return fs.usageErrorf("--admin ADDR is required")
	case f.since <= 0 || f.since > trafficseries.MaxSince:
		return fs.usageErrorf("--since must be positive and at most %v", trafficseries.MaxSince)
	case site.CheckSiteName(f.site) != nil:
		return fs.usageErrorf("--site %q is not a site name", f.site)
	}
	res, raw, err := fetchStats(ctx, &f)
	if err != nil {
		return err
	}
	if f.json {
		_, err := env.Stdout.Write(raw)
		return err
	}
	return printStats(env.Stdout, &res)
}

// fetchStats gets the site's series from the redirector's /api/stats.
func fetchStats(ctx context.Context, f *statsFlags) (trafficseries.Result, []byte, error) {
	var res trafficseries.Result
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	u := "http://" + f.admin + "/api/stats?" + url.Values{"site": {f.site}, "since": {f.since.String()}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return res, nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return res, nil, fmt.Errorf("the redirector's admin listener: %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return res, nil, fmt.Errorf("the redirector's admin listener: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return res, nil, fmt.Errorf("the redirector answered %s: %s", resp.Status, raw)
	}
	if err := json.Unmarshal(raw, &res); err != nil {
		return res, nil, fmt.Errorf("the redirector's answer: %w", err)
	}
	return res, raw, nil
}

// printStats prints a result for people.
func printStats(w io.Writer, r *trafficseries.Result) error {
	t := r.Total
	fmt.Fprintf(w, "Site %s, %s to %s (UTC)\n", r.Site, time.Unix(r.From, 0).UTC().Format(time.DateTime), time.Unix(r.Until, 0).UTC().Format(time.DateTime))
	fmt.Fprintf(w, "Requests %d, bytes %d, unique visitors about %d\n", t.Requests, t.Bytes, r.Visitors)
	fmt.Fprintf(w, "Status 2xx %d, 3xx %d (304 %d), 4xx %d, 5xx %d\n", t.Status[0], t.Status[1], t.NotModified, t.Status[2], t.Status[3])
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, l := range []struct {
		title string
		list  []countLine
	}{{"Top paths", countLines(r.Paths)}, {"Top referrers", countLines(r.Referrers)}, {"Countries", countLines(r.Countries)}, {"Edges", edgeLines(r.Edges)},
		{"Redirects", redirectLines(r.Redirects)}} {
		if len(l.list) == 0 {
			continue
		}
		fmt.Fprintf(tw, "\n%s\t\n", l.title)
		for _, c := range l.list {
			fmt.Fprintf(tw, "  %s\t%d\t\n", c.key, c.n)
		}
	}
	return tw.Flush()
}

type countLine struct {
	key string
	n   uint64
}

func countLines(cs []trafficstats.Count) []countLine {
	out := make([]countLine, len(cs))
	for i, c := range cs {
		out[i] = countLine{c.Key, c.N}
	}
	return out
}

// redirectLines are the visitors the redirectors sent to each edge for each reason, in the
// result's order (largest first): the edge and the reason in a column each.
func redirectLines(rs []trafficseries.Redirects) []countLine {
	out := make([]countLine, len(rs))
	for i, r := range rs {
		out[i] = countLine{r.Edge + "\t" + r.Reason, r.N}
	}
	return out
}

// edgeLines are the requests per edge.
func edgeLines(edges map[string][]trafficseries.Point) []countLine {
	var out []countLine
	for id, ps := range edges {
		var n uint64
		for _, p := range ps {
			n += p.Requests
		}
		out = append(out, countLine{id, n})
	}
	slices.SortFunc(out, func(a, b countLine) int { return cmp.Or(cmp.Compare(b.n, a.n), strings.Compare(a.key, b.key)) })
	return out
}
