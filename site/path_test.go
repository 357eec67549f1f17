package site

import (
	"errors"
	"strings"
	"testing"
)

func TestCheckPath(t *testing.T) {
	good := []string{
		"/index.html",
		"/css/site.css",
		"/a/b/c/d.txt",
		"/café/menü.html",
		"/.well-known/security.txt",
		"/.htaccess",
		"/..hidden",
		"/a.git",
		"/x" + strings.Repeat("y", MaxPathLen-2),
	}
	for _, p := range good {
		if err := CheckPath(p); err != nil {
			t.Errorf("CheckPath(%q) = %v, want nil", p, err)
		}
	}
	bad := map[string]string{
		"":                                    "empty",
		"index.html":                          "not absolute",
		"/":                                   "ends with /",
		"/dir/":                               "ends with /",
		"/a//b":                               "empty segment",
		"/a/./b":                              "dot segment",
		"/a/../b":                             "dot segment",
		"/..":                                 "dot segment",
		"/../etc/passwd":                      "dot segment",
		"/.git/config":                        ".git",
		"/sub/.GIT/HEAD":                      ".git",
		"/a\\b":                               "backslash",
		"/a\x00b":                             "control character",
		"/new\nline":                          "control character",
		"/tab\there":                          "control character",
		"/del\x7f":                            "control character",
		"/c1\u0085":                           "control character",
		"/bad\xff":                            "UTF-8",
		"/" + strings.Repeat("y", MaxPathLen): "longer than",
	}
	for p, want := range bad {
		err := CheckPath(p)
		if !errors.Is(err, ErrInvalidPath) || !strings.Contains(err.Error(), want) {
			t.Errorf("CheckPath(%q) = %v, want ErrInvalidPath saying %q", p, err, want)
		}
	}
}

func TestCheckPatternAndTarget(t *testing.T) {
	patterns := map[string]string{ // pattern → problem ("" when valid)
		"/":               "",
		"/*":              "",
		"/blog/*":         "",
		"/blog/":          "",
		"/news/:year/:id": "",
		"/u/:id/*":        "",
		"/a:b":            "",
		"blog":            "must be a site path",
		"https://x.com/*": "must be a site path",
		"/blog*":          "whole last segment",
		"/*/x":            "whole last segment",
		"/a//b":           "empty segment",
		"/a/../b":         "dot segment",
		"/:a/:a":          "appears twice",
		"/:splat":         "reserved",
		"/:":              "placeholder",
		"/:a.b":           "placeholder",
		"/q?x=1":          "query",
		"/f#x":            "fragment",
		"/%41":            "decoded",
		"/a b":            "white space",
	}
	for p, want := range patterns {
		_, why := checkPattern(p)
		if want == "" && why != "" || want != "" && !strings.Contains(why, want) {
			t.Errorf("checkPattern(%q) = %q, want %q", p, why, want)
		}
	}
	splat := map[string]bool{"splat": true}
	targets := []struct {
		to       string
		captured map[string]bool
		kind     targetKind
		problem  string
	}{
		{"/new", nil, targetPath, ""},
		{"/new/:splat?x=1#top", splat, targetPath, ""},
		{"https://example.com/:splat", splat, targetURL, ""},
		{"HTTP://example.com", nil, targetURL, ""},
		{"https://example.com:8443/x", nil, targetURL, ""},
		{"/new/:splat", nil, 0, ":splat"},
		{"//evil.example/", nil, 0, "protocol-relative"},
		{"/a/../admin", nil, 0, "dot segment"},
		{"javascript:alert(1)", nil, 0, "site path"},
		{"javascript://%0aalert(1)", nil, 0, "scheme"},
		{"data:text/html,<script>", nil, 0, "site path"},
		{"ftp://example.com/", nil, 0, "scheme"},
		{"https://", nil, 0, "no host"},
		{"https://user:pw@example.com/", nil, 0, "user information"},
		{"/a\\b", nil, 0, "backslash"},
		{"/a\rb", nil, 0, "control"},
		{"relative", nil, 0, "site path"},
	}
	for _, tt := range targets {
		kind, why := checkTarget(tt.to, tt.captured)
		if tt.problem == "" && (why != "" || kind != tt.kind) || tt.problem != "" && !strings.Contains(why, tt.problem) {
			t.Errorf("checkTarget(%q) = %v, %q; want %v, %q", tt.to, kind, why, tt.kind, tt.problem)
		}
	}
}
