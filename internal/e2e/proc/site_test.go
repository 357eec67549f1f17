package proc

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
)

// bigFile is the size of the site's binary file: over publish.ChunkThreshold (4 MiB), so it is
// split into content-defined chunks on publishing, assembled by the edges, and a change to it
// resends only the chunks around the change.
const bigFile = 5<<20 + 12345

// siteGen is one generation of the test site: path → content.
type siteGen struct {
	n     int
	files map[string][]byte
}

// makeSite returns generation n of the test site: HTML, CSS and JavaScript (which the publisher
// precompresses), a path with a space, and a binary file of bigFile bytes of which every
// generation rewrites 4 KiB in the middle. version.txt and index.html name the generation.
func makeSite(n int) siteGen {
	big := make([]byte, bigFile)
	r := rand.NewChaCha8([32]byte{'d', 't', 'e', '2', 'e'})
	_, _ = r.Read(big)
	patch := rand.NewChaCha8([32]byte{byte(n)})
	_, _ = patch.Read(big[bigFile/2 : bigFile/2+4096])
	css := bytes.Repeat([]byte("body { font: 16px/1.5 system-ui; margin: 0 auto; max-width: 40em }\n"), 300)
	js := bytes.Repeat([]byte("document.querySelectorAll('a').forEach(a => a.rel = 'noopener');\n"), 300)
	return siteGen{n: n, files: map[string][]byte{
		"index.html":       fmt.Appendf(nil, "<!doctype html><title>dt</title><h1>generation %d</h1>\n", n),
		"version.txt":      fmt.Appendf(nil, "generation %d\n", n),
		"css/site.css":     css,
		"js/app.js":        js,
		"docs/a page.html": []byte("<!doctype html><p>a path with a space</p>\n"),
		"data/big.bin":     big,
	}}
}

// write writes the site into a new directory under root and returns it.
func (s siteGen) write(t *testing.T, root string) string {
	t.Helper()
	dir := filepath.Join(root, fmt.Sprintf("site-%d", s.n))
	for p, b := range s.files {
		path := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

var generationRE = regexp.MustCompile(`^generation (\d+)\n$`)

// generationOf reads the generation from a served version.txt; -1 if the body is not one.
func generationOf(body []byte) int {
	m := generationRE.FindSubmatch(body)
	if m == nil {
		return -1
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}
