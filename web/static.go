package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"time"
)

// static holds the page and everything it loads.
//
//go:embed static
var static embed.FS

// contentSecurityPolicy lets the page load only from the dashboard itself: no external scripts,
// styles, fonts, images or connections, no inline script, no framing (CSP Level 3).
const contentSecurityPolicy = "default-src 'self'; base-uri 'none'; object-src 'none'; form-action 'none'; frame-ancestors 'none'"

// contentTypes are the types of the embedded files, fixed here rather than taken from the
// system's MIME tables (mime.TypeByExtension), which differ between machines.
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".svg":  "image/svg+xml",
}

// asset is one embedded file, ready to serve.
type asset struct {
	body        []byte
	etag        string
	contentType string
}

// loadAssets reads the embedded files once, with a strong ETag each (the content's hash), so a
// reloaded page revalidates its assets with 304s.
func loadAssets() (map[string]asset, error) {
	entries, err := fs.ReadDir(static, "static")
	if err != nil {
		return nil, fmt.Errorf("web: embedded assets: %w", err)
	}
	out := make(map[string]asset, len(entries))
	for _, e := range entries {
		b, err := static.ReadFile(path.Join("static", e.Name()))
		if err != nil {
			return nil, fmt.Errorf("web: embedded asset %s: %w", e.Name(), err)
		}
		ct := contentTypes[path.Ext(e.Name())]
		if ct == "" {
			return nil, fmt.Errorf("web: embedded asset %s: no content type", e.Name())
		}
		sum := sha256.Sum256(b)
		out[e.Name()] = asset{body: b, etag: `"` + hex.EncodeToString(sum[:16]) + `"`, contentType: ct}
	}
	return out, nil
}

func (d *Dashboard) serveIndex(w http.ResponseWriter, r *http.Request) {
	d.writeAsset(w, r, "index.html")
}

func (d *Dashboard) serveAsset(w http.ResponseWriter, r *http.Request) {
	d.writeAsset(w, r, r.PathValue("name"))
}

// writeAsset serves an embedded file through http.ServeContent, which answers conditional and
// range requests from the ETag.
func (d *Dashboard) writeAsset(w http.ResponseWriter, r *http.Request, name string) {
	a, ok := d.assets[name]
	if !ok {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	h.Set("Content-Type", a.contentType)
	h.Set("ETag", a.etag)
	h.Set("Cache-Control", "no-cache") // revalidate: a new binary may serve a new page
	if name == "index.html" {
		h.Set("Content-Security-Policy", contentSecurityPolicy)
	}
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(a.body))
}
