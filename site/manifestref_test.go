package site

import (
	"errors"
	"testing"
	"time"

	"github.com/dt-cdn/dt/blobs"
)

func TestManifestRefRoundTripAndChecks(t *testing.T) {
	m := &Manifest{Version: ManifestVersion, Created: time.Unix(1_700_000_000, 0).UTC(), Files: map[string]File{}}
	for i, p := range []string{"/a.html", "/b.html", "/c.html"} {
		body := []byte{byte(i)}
		m.Files[p] = File{Hash: blobs.Sum(body), Size: 1, Type: "text/html; charset=utf-8"}
	}
	canonical, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	id, _ := m.ID()
	half := len(canonical) / 2
	parts := [][]byte{canonical[:half], canonical[half:]}
	store := map[blobs.Hash][]byte{}
	var ref ManifestRef
	for _, p := range parts {
		h := blobs.Sum(p)
		store[h] = p
		ref.Chunks = append(ref.Chunks, Chunk{Hash: h, Size: int64(len(p))})
	}
	raw, err := ref.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	gotM, gotRef, err := ParseDeployObject(raw)
	if err != nil || gotM != nil || gotRef == nil {
		t.Fatalf("ParseDeployObject(ref) = %v, %v, %v", gotM, gotRef, err)
	}
	get := func(h blobs.Hash) ([]byte, error) {
		if b, ok := store[h]; ok {
			return b, nil
		}
		return nil, blobs.ErrNotFound
	}
	assembled, hs, err := AssembleManifest(gotRef, id, get)
	if err != nil {
		t.Fatal(err)
	}
	if len(hs) != 2 || hs[0] != ref.Chunks[0].Hash || hs[1] != ref.Chunks[1].Hash {
		t.Fatalf("AssembleManifest read chunks %v", hs)
	}
	if again, _ := assembled.ID(); again != id {
		t.Fatal("assembled manifest has another id")
	}
	// An inline manifest decodes as a manifest.
	if gm, gr, err := ParseDeployObject(canonical); err != nil || gm == nil || gr != nil {
		t.Fatalf("inline manifest: %v %v %v", gm, gr, err)
	}
	// A chunk that does not match, the wrong id, and malformed references are refused.
	store[ref.Chunks[0].Hash] = []byte("tampered")
	if _, _, err := AssembleManifest(gotRef, id, get); !errors.Is(err, ErrInvalidManifest) {
		t.Fatalf("tampered chunk: %v", err)
	}
	store[ref.Chunks[0].Hash] = parts[0]
	if _, _, err := AssembleManifest(gotRef, DeployIDOf([]byte("other")), get); !errors.Is(err, ErrInvalidManifest) {
		t.Fatalf("wrong id: %v", err)
	}
	for _, bad := range []string{`{"v":1,"chunks":[]}`, `{"v":2,"chunks":[{"hash":"` + ref.Chunks[0].Hash.String() + `","size":1}]}`,
		`{"v":1,"chunks":[{"hash":"` + ref.Chunks[0].Hash.String() + `","size":0}]}`, `{"v":1,"chunks":[],"extra":1}`, `not json`,
		`{"v":1,"depth":5,"chunks":[{"hash":"` + ref.Chunks[0].Hash.String() + `","size":1}]}`,
		`{"v":1,"depth":-1,"chunks":[{"hash":"` + ref.Chunks[0].Hash.String() + `","size":1}]}`} {
		if _, _, err := ParseDeployObject([]byte(bad)); err == nil {
			t.Errorf("ParseDeployObject(%s) accepted", bad)
		}
	}
}

// TestNestedManifestRef stores a reference's own JSON as chunks under a reference of depth 1:
// it assembles through both levels, reports every chunk read, and a level of the wrong depth is
// refused.
func TestNestedManifestRef(t *testing.T) {
	m := &Manifest{Version: ManifestVersion, Created: time.Unix(1_700_000_000, 0).UTC(), Files: map[string]File{}}
	for i, p := range []string{"/a.html", "/b.html", "/c.html", "/d.html"} {
		body := []byte{byte(i)}
		m.Files[p] = File{Hash: blobs.Sum(body), Size: 1, Type: "text/html; charset=utf-8"}
	}
	canonical, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	id, _ := m.ID()
	store := map[blobs.Hash][]byte{}
	split := func(b []byte, depth int) *ManifestRef {
		r := &ManifestRef{V: 1, Depth: depth}
		for _, p := range [][]byte{b[:len(b)/2], b[len(b)/2:]} {
			h := blobs.Sum(p)
			store[h] = p
			r.Chunks = append(r.Chunks, Chunk{Hash: h, Size: int64(len(p))})
		}
		return r
	}
	get := func(h blobs.Hash) ([]byte, error) {
		if b, ok := store[h]; ok {
			return b, nil
		}
		return nil, blobs.ErrNotFound
	}
	inner := split(canonical, 0)
	innerJSON, err := inner.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	outer := split(innerJSON, 1)
	raw, err := outer.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	_, ref, err := ParseDeployObject(raw)
	if err != nil || ref == nil || ref.Depth != 1 {
		t.Fatalf("ParseDeployObject = %+v, %v", ref, err)
	}
	expanded, err := ref.Expand(get)
	if err != nil || expanded.Depth != 0 || len(expanded.Chunks) != 2 || expanded.Chunks[0] != inner.Chunks[0] {
		t.Fatalf("Expand = %+v, %v", expanded, err)
	}
	got, hs, err := AssembleManifest(ref, id, get)
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := got.ID(); again != id || len(got.Files) != 4 {
		t.Fatalf("assembled %d files, id %s", len(got.Files), again.Short())
	}
	want := append(outer.Hashes(), inner.Hashes()...)
	if len(hs) != len(want) {
		t.Fatalf("read %d chunks, want %d", len(hs), len(want))
	}
	for i := range want {
		if hs[i] != want[i] {
			t.Fatalf("chunk %d read is %s, want %s", i, hs[i].Short(), want[i].Short())
		}
	}
	// A depth-2 reference whose inner level says depth 0 is refused.
	wrong := split(innerJSON, 2)
	if _, err := wrong.Expand(get); !errors.Is(err, ErrInvalidManifest) {
		t.Fatalf("Expand of a wrong depth: %v", err)
	}
	if _, err := inner.Expand(get); err == nil {
		t.Fatal("Expand of depth 0 succeeded")
	}
}

func FuzzParseDeployObject(f *testing.F) {
	f.Add([]byte(`{"v":1,"chunks":[{"hash":"0000000000000000000000000000000000000000000000000000000000000000","size":5}]}`))
	f.Add([]byte(`{"v":1,"created":"2023-11-14T22:13:20Z","files":{}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, ref, err := ParseDeployObject(b)
		if err != nil {
			return
		}
		if (m == nil) == (ref == nil) {
			t.Fatal("exactly one of manifest and reference must be set")
		}
		if ref != nil {
			if _, err := ref.Marshal(); err != nil {
				t.Fatal(err)
			}
		}
	})
}
