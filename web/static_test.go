package web

import (
	"encoding/xml"
	"io"
	"io/fs"
	"math"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/dt-cdn/dt/heartbeat"
)

// TestPageAndAssets serves the page, each asset with its type and a strong ETag that answers
// revalidation with 304, and 404 for anything else.
func TestPageAndAssets(t *testing.T) {
	r := newTestRedirector(t, 0)
	_, url := newDashboard(t, Config{Edges: r.svc})
	get := func(path string, header ...string) (*http.Response, string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, url+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, string(b)
	}

	resp, body := get("/")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/html; charset=utf-8" ||
		!strings.Contains(body, `src="static/dashboard.js"`) {
		t.Fatalf("GET /: %s %q\n%s", resp.Status, resp.Header.Get("Content-Type"), body)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
		t.Errorf("Content-Security-Policy %q", csp)
	}
	if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Error("no nosniff")
	}
	for name, ctype := range map[string]string{
		"dashboard.js":  "text/javascript; charset=utf-8",
		"dashboard.css": "text/css; charset=utf-8",
		"land.svg":      "image/svg+xml",
	} {
		resp, body := get("/static/" + name)
		etag := resp.Header.Get("ETag")
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != ctype || len(body) == 0 || !strings.HasPrefix(etag, `"`) {
			t.Errorf("%s: %s %q %q, %d bytes", name, resp.Status, resp.Header.Get("Content-Type"), etag, len(body))
			continue
		}
		if resp, _ := get("/static/"+name, "If-None-Match", etag); resp.StatusCode != http.StatusNotModified {
			t.Errorf("%s revalidated: %s, want 304", name, resp.Status)
		}
	}
	for _, path := range []string{"/static/missing.js", "/elsewhere", "/static/../doc.go"} {
		if resp, _ := get(path); resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %s, want 404", path, resp.Status)
		}
	}
}

// TestNothingExternal checks the promise that the page needs nothing from elsewhere: no embedded
// file names an absolute URL, except the SVG namespace name (an identifier, never fetched).
func TestNothingExternal(t *testing.T) {
	absolute := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9-]+(\.[a-z0-9-]+)+(/[^\s"'<>)]*)?`)
	allowed := map[string]bool{"http://www.w3.org/2000/svg": true}
	err := fs.WalkDir(static, "static", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := static.ReadFile(path)
		if err != nil {
			return err
		}
		for _, u := range absolute.FindAllString(string(b), -1) {
			if !allowed[u] {
				t.Errorf("%s refers to %s", path, u)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestLandOutline checks the generated map: one path with the id the page uses, in the viewBox
// the projection assumes, with the subpaths of the world's land masses.
func TestLandOutline(t *testing.T) {
	b, err := static.ReadFile("static/land.svg")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		ViewBox string `xml:"viewBox,attr"`
		Paths   []struct {
			ID string `xml:"id,attr"`
			D  string `xml:"d,attr"`
		} `xml:"path"`
	}
	if err := xml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.ViewBox != "0 0 3600 1800" || len(doc.Paths) != 1 || doc.Paths[0].ID != "land" {
		t.Fatalf("land.svg: viewBox %q, %d paths", doc.ViewBox, len(doc.Paths))
	}
	page, err := static.ReadFile("static/index.html")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(page), `href="static/land.svg#land"`) {
		t.Error("the page does not use the land path")
	}
	// Natural Earth's 1:110m land has 127 polygons; a few are drawn twice, across the antimeridian.
	if n := strings.Count(doc.Paths[0].D, "M"); n < 120 || n > 140 {
		t.Errorf("%d subpaths", n)
	}
}

func TestProject(t *testing.T) {
	for _, c := range []struct {
		lat, lon float64
		x, y     float64
	}{
		{90, -180, 0, 0},
		{-90, 180, 3600, 1800},
		{0, 0, 1800, 900},
		{52.37, 4.9, 1849, 376.3},        // Amsterdam
		{-33.87, 151.21, 3312.1, 1238.7}, // Sydney
	} {
		p := project(&heartbeat.Location{Lat: c.lat, Lon: c.lon})
		if math.Abs(p.X-c.x) > 1e-6 || math.Abs(p.Y-c.y) > 1e-6 {
			t.Errorf("project(%v, %v) = %v, want %v, %v", c.lat, c.lon, *p, c.x, c.y)
		}
	}
	if project(nil) != nil {
		t.Error("no location is placed somewhere")
	}
}
