package publish

import (
	"context"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestScanReusesVariantsOfUnchangedFiles: with the previous deploy given, an unchanged file takes
// its variants from it (no compression, so no source for them in the plan), a changed one is
// compressed anew, and the manifest is the same as a full scan's.
func TestScanReusesVariantsOfUnchangedFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("index.html", strings.Repeat("<p>unchanged text compresses well</p>\n", 200))
	write("app.js", strings.Repeat("console.log('first version');\n", 200))
	ctx := context.Background()
	first, err := Scan(ctx, dir, ScanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	write("app.js", strings.Repeat("console.log('second version');\n", 200))

	full, err := Scan(ctx, dir, ScanOptions{Created: first.Manifest.Created})
	if err != nil {
		t.Fatal(err)
	}
	defer full.Close()
	reused, err := Scan(ctx, dir, ScanOptions{Created: first.Manifest.Created, Previous: first.Manifest})
	if err != nil {
		t.Fatal(err)
	}
	defer reused.Close()

	fullID, _ := full.Manifest.ID()
	reusedID, _ := reused.Manifest.ID()
	if fullID != reusedID {
		t.Fatal("reusing variants changed the manifest")
	}
	index := reused.Manifest.Files["/index.html"]
	if len(index.Variants) == 0 || !maps.Equal(index.Variants, first.Manifest.Files["/index.html"].Variants) {
		t.Fatal("the unchanged file did not keep its variants")
	}
	for _, v := range index.Variants {
		if _, ok := reused.Sources[v.Hash]; ok {
			t.Fatal("an unchanged file's variant was compressed again")
		}
	}
	app := reused.Manifest.Files["/app.js"]
	for _, v := range app.Variants {
		if _, ok := reused.Sources[v.Hash]; !ok && v.Level == 0 { // derived ones never travel
			t.Fatal("a changed file's variant has no source")
		}
	}
	if maps.Equal(app.Variants, first.Manifest.Files["/app.js"].Variants) {
		t.Fatal("the changed file kept the old variants")
	}
}
