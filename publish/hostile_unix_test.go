//go:build unix

package publish

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/dt-cdn/dt/site"
)

// scanErr scans dir and returns the error, failing the test if the scan succeeds.
func scanErr(t *testing.T, dir string, opts ScanOptions) error {
	t.Helper()
	opts.TempDir = t.TempDir()
	p, err := Scan(context.Background(), dir, opts)
	if err == nil {
		p.Close()
		t.Fatalf("Scan accepted the tree; files: %v", keys(p.Manifest.Files))
	}
	return err
}

func keys(m map[string]site.File) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func symlink(t *testing.T, target, name string) {
	t.Helper()
	if err := os.Symlink(target, name); err != nil {
		t.Fatal(err)
	}
}

func TestHostileSymlinks(t *testing.T) {
	outside := t.TempDir()
	writeTree(t, outside, map[string][]byte{"secret.txt": []byte("secret")})
	tests := []struct {
		name  string
		setup func(dir string)
		want  string
	}{
		{"to /etc/passwd", func(dir string) { symlink(t, "/etc/passwd", filepath.Join(dir, "passwd.txt")) }, "passwd.txt"},
		{"to a directory outside", func(dir string) { symlink(t, outside, filepath.Join(dir, "docs")) }, "docs"},
		{"up and out", func(dir string) { symlink(t, "../../", filepath.Join(dir, "up")) }, "up"},
		{"absolute into the site", func(dir string) { symlink(t, filepath.Join(dir, "index.html"), filepath.Join(dir, "abs.html")) }, "abs.html"},
		{"loop of links", func(dir string) {
			symlink(t, "b", filepath.Join(dir, "a"))
			symlink(t, "a", filepath.Join(dir, "b"))
		}, "a"},
		{"dangling", func(dir string) { symlink(t, "nowhere", filepath.Join(dir, "gone.html")) }, "gone.html"},
		{"directory loop", func(dir string) { symlink(t, "..", filepath.Join(dir, "sub", "loop")) }, "loop"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeTree(t, dir, map[string][]byte{"index.html": []byte("<p>hi</p>"), "sub/page.html": []byte("<p>page</p>")})
			tt.setup(dir)
			for _, follow := range []bool{false, true} {
				err := scanErr(t, dir, ScanOptions{FollowSymlinks: follow})
				if !errors.Is(err, ErrSymlink) || !strings.Contains(err.Error(), tt.want) {
					t.Errorf("follow=%v: err = %v, want ErrSymlink naming %q", follow, err, tt.want)
				}
				why := "is a symbolic link"
				if follow {
					why = "cannot be followed inside the site"
					if tt.name == "directory loop" {
						why = "leads back to a directory above it"
					}
				}
				if !strings.Contains(err.Error(), why) {
					t.Errorf("follow=%v: err = %v, want it to say %q", follow, err, why)
				}
				if strings.Contains(err.Error(), "secret") && !strings.Contains(tt.want, "secret") {
					t.Errorf("error mentions the outside file: %v", err)
				}
			}
		})
	}
}

func TestSymlinksInsideFollowed(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string][]byte{"index.html": []byte("<p>hi</p>"), "real/page.html": []byte("<p>page</p>")})
	symlink(t, "index.html", filepath.Join(dir, "home.html"))
	symlink(t, "real", filepath.Join(dir, "alias"))
	symlink(t, "../index.html", filepath.Join(dir, "real", "up.html"))

	err := scanErr(t, dir, ScanOptions{})
	if !errors.Is(err, ErrSymlink) || !strings.Contains(err.Error(), "home.html") || !strings.Contains(err.Error(), "alias") {
		t.Fatalf("links without FollowSymlinks: err = %v", err)
	}

	p := scan(t, dir, ScanOptions{FollowSymlinks: true})
	checkPlan(t, p)
	m := p.Manifest
	for _, path := range []string{"/home.html", "/alias/page.html", "/alias/up.html", "/real/up.html"} {
		if _, ok := m.Files[path]; !ok {
			t.Errorf("%s not published", path)
		}
	}
	if m.Files["/home.html"].Hash != m.Files["/index.html"].Hash || m.Files["/alias/page.html"].Hash != m.Files["/real/page.html"].Hash {
		t.Error("a link is not published with its target's content")
	}
}

func TestHiddenFiles(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string][]byte{
		"index.html":               []byte("<p>hi</p>"),
		".env":                     []byte("API_KEY=secret\n"),
		".env.production":          []byte("DB=secret\n"),
		".DS_Store":                []byte("junk"),
		".git/config":              []byte("[core]\n"),
		"sub/.git":                 []byte("gitdir: ../.git/modules/sub\n"),
		".cache/x.js":              []byte("x"),
		".well-known/security.txt": []byte("Contact: mailto:security@example.com\n"),
		".well-known/.hidden":      []byte("h"),
		"assets/.gitkeep":          nil,
	})
	err := scanErr(t, dir, ScanOptions{})
	if !errors.Is(err, ErrHidden) {
		t.Fatalf("err = %v, want ErrHidden", err)
	}
	msg := err.Error()
	for _, want := range []string{".env: environment files often hold secrets", ".env.production", ".DS_Store", ".git: repository data",
		"sub/.git", ".cache", ".well-known/.hidden", "assets/.gitkeep"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error does not name %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "security.txt") || strings.Contains(msg, "x.js") {
		t.Errorf("error names a published file or one inside a refused directory:\n%s", msg)
	}

	// IncludeHidden publishes hidden files (warning about .env), but never .git.
	err = scanErr(t, dir, ScanOptions{IncludeHidden: true})
	if !errors.Is(err, ErrHidden) || !strings.Contains(err.Error(), ".git") || strings.Contains(err.Error(), ".DS_Store") {
		t.Fatalf("IncludeHidden: err = %v, want only .git refused", err)
	}
	os.RemoveAll(filepath.Join(dir, ".git"))
	os.Remove(filepath.Join(dir, "sub", ".git"))
	p := scan(t, dir, ScanOptions{IncludeHidden: true})
	checkPlan(t, p)
	for _, path := range []string{"/.env", "/.DS_Store", "/.cache/x.js", "/.well-known/.hidden", "/assets/.gitkeep"} {
		if _, ok := p.Manifest.Files[path]; !ok {
			t.Errorf("IncludeHidden: %s not published", path)
		}
	}
	if !hasWarning(p, ".env is published") || !hasWarning(p, ".env.production is published") {
		t.Errorf("no warning about .env: %q", p.Warnings)
	}

	// Without hidden files, /.well-known/ is published by default.
	for _, name := range []string{".env", ".env.production", ".DS_Store", ".cache", ".well-known/.hidden", "assets/.gitkeep"} {
		os.RemoveAll(filepath.Join(dir, name))
	}
	p = scan(t, dir, ScanOptions{})
	if _, ok := p.Manifest.Files["/.well-known/security.txt"]; !ok {
		t.Error("/.well-known/security.txt not published")
	}
}

func TestUnsafeNames(t *testing.T) {
	for name, want := range map[string]string{
		"bad\nname.html":  "U+000A",
		"tab\there.html":  "U+0009",
		"back\\slash.js":  "backslash",
		"latin1-\xe9.txt": "UTF-8",
		strings.Repeat(strings.Repeat("d", 250)+"/", 4) + strings.Repeat("f", 250): "longer than",
	} {
		dir := t.TempDir()
		writeTree(t, dir, map[string][]byte{"index.html": []byte("<p>hi</p>"), name: []byte("x")})
		err := scanErr(t, dir, ScanOptions{IncludeHidden: true, FollowSymlinks: true})
		if !errors.Is(err, ErrUnsafeName) || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: err = %v, want ErrUnsafeName saying %q", name, err, want)
		}
		if strings.Contains(err.Error(), "\n") && !strings.Contains(err.Error(), `\n`) {
			t.Errorf("%q: error carries a raw newline: %q", name, err)
		}
	}
	// ".." cannot come from a real directory listing; the site path check refuses it anyway.
	if err := site.CheckPath("/a/../etc/passwd"); !errors.Is(err, site.ErrInvalidPath) {
		t.Errorf("CheckPath accepted ..: %v", err)
	}
	if why := nameProblem(".."); why == "" {
		t.Error("nameProblem accepted ..")
	}
}

func TestSpecialFiles(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string][]byte{"index.html": []byte("<p>hi</p>")})
	if err := syscall.Mkfifo(filepath.Join(dir, "pipe.html"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := scanErr(t, dir, ScanOptions{})
	if !errors.Is(err, ErrNotRegular) || !strings.Contains(err.Error(), "pipe.html") {
		t.Fatalf("FIFO: err = %v, want ErrNotRegular naming pipe.html", err)
	}

}

// TestUnreadableFile checks that a file Scan may not read fails the scan with an error naming
// it. Permissions do not stop root, so as root the test runs its check in a child process (this
// test binary, copied where an unprivileged user can run it) as nobody.
func TestUnreadableFile(t *testing.T) {
	if dir := os.Getenv("DT_PUBLISH_UNREADABLE_DIR"); dir != "" {
		checkUnreadable(t, dir)
		return
	}
	base, err := os.MkdirTemp("", "dt-publish-unreadable-*")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	dir := filepath.Join(base, "site")
	writeTree(t, dir, map[string][]byte{"index.html": []byte("<p>hi</p>"), "locked.html": []byte("x")})
	if err := os.Chmod(filepath.Join(dir, "locked.html"), 0); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() != 0 {
		checkUnreadable(t, dir)
		return
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(base, "publish.test")
	data, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-test.run=^TestUnreadableFile$", "-test.v")
	cmd.Env = append(os.Environ(), "DT_PUBLISH_UNREADABLE_DIR="+dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestUnreadableFile") {
		t.Fatalf("child as nobody: %v\n%s", err, out)
	}
	t.Logf("child as nobody:\n%s", out)
}

func checkUnreadable(t *testing.T, dir string) {
	_, err := Scan(context.Background(), dir, ScanOptions{TempDir: filepath.Dir(dir)})
	if !errors.Is(err, os.ErrPermission) || !strings.Contains(err.Error(), "locked.html") {
		t.Fatalf("unreadable file: err = %v, want a permission error naming locked.html", err)
	}
	t.Logf("error: %v", err)
}

// TestFileReplacedDuringScan swaps a file for a directory after the walk listed it: the read
// fails with ErrChanged instead of publishing something else.
func TestFileReplacedDuringScan(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string][]byte{"a.html": []byte("<p>a</p>"), "b.html": []byte("<p>b</p>")})
	swapped := false
	opts := ScanOptions{Workers: 1, TempDir: t.TempDir(), Progress: func(p Progress) {
		if p.Files == 1 && !swapped {
			swapped = true
			b := filepath.Join(dir, "b.html")
			os.Remove(b)
			os.Mkdir(b, 0o755)
		}
	}}
	_, err := Scan(context.Background(), dir, opts)
	if !errors.Is(err, ErrChanged) || !strings.Contains(err.Error(), "b.html") {
		t.Fatalf("err = %v, want ErrChanged naming b.html", err)
	}
}
