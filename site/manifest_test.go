package site

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/dt-cdn/dt/blobs"
)

// testManifest returns a valid manifest with a plain, a chunked and a compressed file, and rules.
func testManifest() *Manifest {
	h := func(s string) blobs.Hash { return blobs.Sum([]byte(s)) }
	return &Manifest{
		Version: ManifestVersion,
		Created: time.Date(2025, 3, 1, 12, 0, 0, 500, time.FixedZone("CET", 3600)),
		Files: map[string]File{
			"/index.html": {Hash: h("index"), Size: 1000, Type: "text/html; charset=utf-8",
				Variants: map[string]Variant{"br": {Hash: h("index.br"), Size: 300}, "gzip": {Hash: h("index.gz"), Size: 400}}},
			"/big.bin": {Hash: h("big"), Size: 10 << 20, Type: "application/octet-stream",
				Chunks: []Chunk{{Hash: h("c1"), Size: 4 << 20}, {Hash: h("c2"), Size: 6 << 20}}},
			"/a <b>&c.txt": {Hash: h("odd"), Size: 5, Type: "text/plain; charset=utf-8"},
			"/404.html":    {Hash: h("404"), Size: 50, Type: "text/html; charset=utf-8"},
		},
		Redirects: []Redirect{{From: "/old/*", To: "/new/:splat", Status: 301}, {From: "/x", To: "https://example.com/", Status: 302, Force: true}},
		Headers:   []HeaderRule{{Path: "/*", Values: [][2]string{{"X-Frame-Options", "DENY"}}}},
		SPA:       true,
		CleanURLs: true,
	}
}

// roundTripRules puts rules into a valid manifest and checks that they survive Marshal and
// ParseManifest unchanged.
func roundTripRules(t *testing.T, redirects []Redirect, headers []HeaderRule) {
	t.Helper()
	m := testManifest()
	m.Redirects, m.Headers = redirects, headers
	b, err := m.Marshal()
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	back, err := ParseManifest(b)
	if err != nil {
		t.Fatalf("ParseManifest: %v", err)
	}
	if !reflect.DeepEqual(back.Redirects, m.Redirects) || !reflect.DeepEqual(back.Headers, m.Headers) {
		t.Fatalf("rules changed in a round trip:\n%+v %+v\n%+v %+v", m.Redirects, m.Headers, back.Redirects, back.Headers)
	}
}

func TestManifestRoundTrip(t *testing.T) {
	m := testManifest()
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(`"created":"2025-03-01T11:00:00.0000005Z"`)) {
		t.Errorf("created not in UTC: %s", b)
	}
	if !bytes.Contains(b, []byte(`"/a <b>&c.txt"`)) {
		t.Errorf("HTML characters escaped: %s", b)
	}
	back, err := ParseManifest(b)
	if err != nil {
		t.Fatal(err)
	}
	if !back.Created.Equal(m.Created) || !reflect.DeepEqual(back.Files, m.Files) || !reflect.DeepEqual(back.Redirects, m.Redirects) ||
		!reflect.DeepEqual(back.Headers, m.Headers) || back.SPA != m.SPA || back.CleanURLs != m.CleanURLs {
		t.Fatalf("round trip changed the manifest:\n%+v\n%+v", m, back)
	}
	id, err := m.ID()
	if err != nil {
		t.Fatal(err)
	}
	if id != DeployID(sha256.Sum256(b)) || id != DeployIDOf(b) {
		t.Fatal("ID is not the SHA-256 of Marshal's output")
	}
	// The same manifest built again (maps filled in another order) has the same id.
	m2 := testManifest()
	m2.Files = map[string]File{}
	for _, p := range []string{"/404.html", "/big.bin", "/a <b>&c.txt", "/index.html"} {
		m2.Files[p] = m.Files[p]
	}
	if id2, _ := m2.ID(); id2 != id {
		t.Fatal("same manifest, different id")
	}
	m2.Files["/index.html"] = File{Hash: blobs.Sum([]byte("other")), Size: 1, Type: "text/html"}
	if id3, _ := m2.ID(); id3 == id {
		t.Fatal("different manifest, same id")
	}
}

func TestParseManifestRefusesNonCanonical(t *testing.T) {
	b, err := testManifest().Marshal()
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	variants := map[string]string{
		"white space":   strings.Replace(s, `{"clean_urls"`, `{ "clean_urls"`, 1),
		"trailing data": s + "\n",
		"offset time":   strings.Replace(s, `"2025-03-01T11:00:00.0000005Z"`, `"2025-03-01T12:00:00.0000005+01:00"`, 1),
		"escaped html":  strings.Replace(s, `/a <b>&c.txt`, `/a \u003cb\u003e\u0026c.txt`, 1),
		"explicit null": strings.Replace(s, `"spa":true`, `"spa":true,"headers":null`, 1),
	}
	// Move "clean_urls" to the end: same content, keys out of order.
	variants["key order"] = strings.Replace(s, `"clean_urls":true,`, ``, 1)
	variants["key order"] = variants["key order"][:len(variants["key order"])-1] + `,"clean_urls":true}`
	for name, in := range variants {
		if in == s {
			t.Fatalf("%s: test input not changed", name)
		}
		_, err := ParseManifest([]byte(in))
		if !errors.Is(err, ErrNotCanonical) {
			t.Errorf("%s: err = %v, want ErrNotCanonical", name, err)
		}
	}
	unknown := strings.Replace(s, `"spa":true`, `"spa":true,"zzz":1`, 1)
	if _, err := ParseManifest([]byte(unknown)); !errors.Is(err, ErrInvalidManifest) {
		t.Errorf("unknown field: err = %v, want ErrInvalidManifest", err)
	}
}

func TestValidate(t *testing.T) {
	h := blobs.Sum([]byte("x"))
	tests := []struct {
		name   string
		change func(m *Manifest)
		want   string
	}{
		{"version", func(m *Manifest) { m.Version = 2 }, "version 2"},
		{"no time", func(m *Manifest) { m.Created = time.Time{} }, "creation time"},
		{"bad path", func(m *Manifest) { m.Files["/a/../b"] = m.Files["/404.html"] }, "dot segment"},
		{"relative path", func(m *Manifest) { m.Files["x.html"] = m.Files["/404.html"] }, "not absolute"},
		{"no hash", func(m *Manifest) { f := m.Files["/404.html"]; f.Hash = blobs.Hash{}; m.Files["/404.html"] = f }, "no hash"},
		{"negative size", func(m *Manifest) { f := m.Files["/404.html"]; f.Size = -1; m.Files["/404.html"] = f }, "negative"},
		{"no type", func(m *Manifest) { f := m.Files["/404.html"]; f.Type = ""; m.Files["/404.html"] = f }, "type: empty"},
		{"bad type", func(m *Manifest) { f := m.Files["/404.html"]; f.Type = "text/html;;;="; m.Files["/404.html"] = f }, "media type"},
		{"type injection", func(m *Manifest) { f := m.Files["/404.html"]; f.Type = "text/html\r\nX: y"; m.Files["/404.html"] = f }, "control"},
		{"chunks short", func(m *Manifest) { f := m.Files["/big.bin"]; f.Chunks = f.Chunks[:1]; m.Files["/big.bin"] = f }, "single chunk"},
		{"chunks long", func(m *Manifest) {
			f := m.Files["/big.bin"]
			f.Chunks = append(f.Chunks, Chunk{Hash: h, Size: 1})
			m.Files["/big.bin"] = f
		}, "does not fit"},
		{"chunks under", func(m *Manifest) { f := m.Files["/big.bin"]; f.Size++; m.Files["/big.bin"] = f }, "add up"},
		{"empty chunk", func(m *Manifest) {
			f := m.Files["/big.bin"]
			f.Chunks = []Chunk{{Hash: h, Size: 0}, {Hash: h, Size: f.Size}}
			m.Files["/big.bin"] = f
		}, "does not fit"},
		{"variant coding", func(m *Manifest) { m.Files["/index.html"].Variants["deflate"] = Variant{Hash: h, Size: 1} }, "unknown content coding"},
		{"variant larger", func(m *Manifest) { m.Files["/index.html"].Variants["br"] = Variant{Hash: h, Size: 1000} }, "not between"},
		{"variant is raw", func(m *Manifest) {
			m.Files["/index.html"].Variants["br"] = Variant{Hash: m.Files["/index.html"].Hash, Size: 10}
		}, "raw content"},
		{"hash two sizes", func(m *Manifest) {
			f := m.Files["/404.html"]
			f.Hash = m.Files["/index.html"].Hash
			m.Files["/404.html"] = f
		}, "elsewhere"},
		{"bad redirect", func(m *Manifest) { m.Redirects[0].To = "javascript:alert(1)" }, "redirect 1"},
		{"bad status", func(m *Manifest) { m.Redirects[1].Status = 418 }, "status 418"},
		{"bad header", func(m *Manifest) { m.Headers[0].Values[0][1] = "a\nb" }, "control"},
		{"empty header rule", func(m *Manifest) { m.Headers[0].Values = nil }, "no headers"},
		{"spa without index", func(m *Manifest) { delete(m.Files, "/index.html") }, "SPA"},
	}
	if err := testManifest().Validate(); err != nil {
		t.Fatalf("valid manifest: %v", err)
	}
	for _, tt := range tests {
		m := testManifest()
		tt.change(m)
		err := m.Validate()
		if !errors.Is(err, ErrInvalidManifest) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want ErrInvalidManifest saying %q", tt.name, err, tt.want)
		}
		if _, err := m.Marshal(); err == nil {
			t.Errorf("%s: Marshal accepted an invalid manifest", tt.name)
		}
	}
}

func TestEmptyManifest(t *testing.T) {
	m := &Manifest{Version: ManifestVersion, Created: time.Unix(1700000000, 0)}
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"created":"2023-11-14T22:13:20Z","files":{},"v":1}`; string(b) != want {
		t.Fatalf("got %s, want %s", b, want)
	}
	if _, err := ParseManifest(b); err != nil {
		t.Fatal(err)
	}
}

func TestDeployID(t *testing.T) {
	id := DeployIDOf([]byte("x"))
	s := id.String()
	back, err := ParseDeployID(s)
	if err != nil || back != id {
		t.Fatalf("ParseDeployID(%q) = %v, %v", s, back, err)
	}
	if id.Short() != s[:12] {
		t.Errorf("Short = %q", id.Short())
	}
	if v := id.LogValue(); v.String() != s[:12] {
		t.Errorf("LogValue = %v", v)
	}
	for _, bad := range []string{"", s[:63], strings.ToUpper(s), s + "0", "sha256:" + s[7:], s[:63] + "g"} {
		if _, err := ParseDeployID(bad); !errors.Is(err, ErrInvalidDeployID) {
			t.Errorf("ParseDeployID(%q) = %v, want ErrInvalidDeployID", bad, err)
		}
	}
}

// FuzzParseManifest checks that whatever ParseManifest accepts is valid and is exactly its own
// canonical encoding, so its id is the hash of the input.
func FuzzParseManifest(f *testing.F) {
	b, err := testManifest().Marshal()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte(`{"created":"2023-11-14T22:13:20Z","files":{},"v":1}`))
	f.Add([]byte(`{"created":"2023-11-14T22:13:20Z","files":{"/a":{"hash":"` + strings.Repeat("ab", 32) + `","size":1,"type":"text/plain"}},"v":1}`))
	f.Add([]byte(`{"v":1}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, in []byte) {
		m, err := ParseManifest(in)
		if err != nil {
			return
		}
		if err := m.Validate(); err != nil {
			t.Fatalf("accepted an invalid manifest: %v", err)
		}
		out, err := m.Marshal()
		if err != nil || !bytes.Equal(out, in) {
			t.Fatalf("accepted a non-canonical manifest:\n%s\n%s (%v)", in, out, err)
		}
		if id, _ := m.ID(); id != DeployIDOf(in) {
			t.Fatal("id is not the hash of the input")
		}
	})
}
