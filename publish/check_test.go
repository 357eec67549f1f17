package publish

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckDir checks what CheckDir refuses before any network: a missing directory, a file, and
// rules files that do not parse; and that a good site passes.
func TestCheckDir(t *testing.T) {
	root := t.TempDir()
	site := func(files map[string][]byte) string {
		dir, err := os.MkdirTemp(root, "site-*")
		if err != nil {
			t.Fatal(err)
		}
		writeTree(t, dir, files)
		return dir
	}
	file := filepath.Join(root, "index.html")
	if err := os.WriteFile(file, []byte("<h1>hi</h1>"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, dir, want string
	}{
		{"good", site(map[string][]byte{"index.html": []byte("<h1>hi</h1>"), "_redirects": []byte("/old /new 301\n"), "_headers": []byte("/*\n  X-Frame-Options: DENY\n")}), ""},
		{"no rules", site(map[string][]byte{"index.html": nil}), ""},
		{"missing", filepath.Join(root, "nope"), "does not exist"},
		{"a file", file, "is not a directory"},
		{"bad redirects", site(map[string][]byte{"_redirects": []byte("/only-a-source\n")}), "_redirects"},
		{"bad headers", site(map[string][]byte{"_headers": []byte("  X-Orphan: no path above\n")}), "_headers"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckDir(tc.dir)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("CheckDir refused a good site: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("CheckDir = %v, want an error naming %q", err, tc.want)
			}
		})
	}
}
