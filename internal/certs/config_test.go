package certs

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestNewRejectsBadConfig(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		cfg  Config
		want []error
	}{
		{"IPv4 domain", Config{Domains: []string{"192.0.2.1"}, CacheDir: dir}, []error{ErrDomain}},
		{"IPv6 domain", Config{Domains: []string{"2001:db8::1"}, CacheDir: dir}, []error{ErrDomain}},
		{"wildcard", Config{Domains: []string{"*.example.com"}, CacheDir: dir}, []error{ErrDomain}},
		{"single label", Config{Domains: []string{"localhost"}, CacheDir: dir}, []error{ErrDomain}},
		{"port", Config{Domains: []string{"example.com:443"}, CacheDir: dir}, []error{ErrDomain}},
		{"underscore", Config{Domains: []string{"a_b.example.com"}, CacheDir: dir}, []error{ErrDomain}},
		{"empty label", Config{Domains: []string{"a..example.com"}, CacheDir: dir}, []error{ErrDomain}},
		{"hyphen edge", Config{Domains: []string{"-a.example.com"}, CacheDir: dir}, []error{ErrDomain}},
		{"label too long", Config{Domains: []string{strings.Repeat("a", 64) + ".com"}, CacheDir: dir}, []error{ErrDomain}},
		{"name too long", Config{Domains: []string{strings.Repeat("a.", 127) + "com"}, CacheDir: dir}, []error{ErrDomain}},
		{"unicode", Config{Domains: []string{"bücher.example"}, CacheDir: dir}, []error{ErrDomain}},
		{"empty", Config{Domains: []string{""}, CacheDir: dir}, []error{ErrDomain}},
		{"no cache", Config{Domains: []string{"e1.example.com"}}, []error{ErrCacheDir}},
		{"http directory", Config{Domains: []string{"e1.example.com"}, CacheDir: dir,
			ACMEDirectory: "http://127.0.0.1/dir"}, []error{ErrDirectory}},
		{"relative directory", Config{Domains: []string{"e1.example.com"}, CacheDir: dir,
			ACMEDirectory: "/dir"}, []error{ErrDirectory}},
		{"email with name", Config{Domains: []string{"e1.example.com"}, CacheDir: dir,
			Email: "Ops <ops@example.com>"}, []error{ErrEmail}},
		{"email garbage", Config{Domains: []string{"e1.example.com"}, CacheDir: dir, Email: "ops"},
			[]error{ErrEmail}},
		{"all at once", Config{Domains: []string{"x", "1.2.3.4"}, ACMEDirectory: "ftp://x", Email: "@"},
			[]error{ErrDomain, ErrCacheDir, ErrDirectory, ErrEmail}},
		{"cache dir is a file", Config{Domains: []string{"e1.example.com"},
			CacheDir: writeFile(t, "f", "x")}, []error{ErrCacheDir}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := New(tt.cfg)
			if err == nil {
				t.Fatalf("New succeeded with %+v", tt.cfg)
			}
			if m != nil {
				t.Error("New returned a Manager with an error")
			}
			for _, want := range tt.want {
				if !errors.Is(err, want) {
					t.Errorf("error %q is not %v", err, want)
				}
			}
		})
	}
}

func TestNewCanonicalDomains(t *testing.T) {
	m, err := New(Config{
		Domains:       []string{"E1.Example.COM.", "e1.example.com", "xn--bcher-kva.example", "e2.example.com"},
		CacheDir:      t.TempDir(),
		ACMEDirectory: "https://127.0.0.1:1/dir",
		Email:         "ops@example.com",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"e1.example.com", "xn--bcher-kva.example", "e2.example.com"}
	if got := m.Domains(); !slices.Equal(got, want) {
		t.Errorf("Domains() = %v, want %v", got, want)
	}
	m.Domains()[0] = "changed"
	if m.Domains()[0] != "e1.example.com" {
		t.Error("Domains() exposes the Manager's slice")
	}
}

func TestNewCreatesPrivateCacheDir(t *testing.T) {
	for _, domains := range [][]string{{"e1.example.com"}, nil} {
		dir := filepath.Join(t.TempDir(), "a", "certs")
		if _, err := New(Config{Domains: domains, CacheDir: dir}); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(dir)
		if err != nil {
			t.Fatal(err)
		}
		if !fi.IsDir() || fi.Mode().Perm() != 0o700 {
			t.Errorf("domains %v: cache dir mode %v, want drwx------", domains, fi.Mode())
		}
	}
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
