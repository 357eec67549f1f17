package site

import (
	"maps"
	"strings"
	"testing"
)

func TestMatchRule(t *testing.T) {
	tests := []struct {
		pattern, path string
		ok            bool
		params        map[string]string
	}{
		{"/old", "/old", true, nil},
		{"/old", "/old/", true, nil},
		{"/old", "/older", false, nil},
		{"/old", "/OLD", false, nil},
		{"/blog/*", "/blog/2024/post", true, map[string]string{"splat": "2024/post"}},
		{"/blog/*", "/blog/", true, map[string]string{"splat": ""}},
		{"/blog/*", "/blog", true, map[string]string{"splat": ""}},
		{"/blog/*", "/blogs/x", false, nil},
		{"/*", "/anything/at/all", true, map[string]string{"splat": "anything/at/all"}},
		{"/news/:year/:slug", "/news/2024/hello", true, map[string]string{"year": "2024", "slug": "hello"}},
		{"/news/:year/:slug", "/news/2024", false, nil},
		{"/news/:year/:slug", "/news//hello", false, nil},
		{"/u/:id/*", "/u/42/photos/1.jpg", true, map[string]string{"id": "42", "splat": "photos/1.jpg"}},
		{"/u/:id/*", "/v/42/x", false, nil},
	}
	for _, tt := range tests {
		params, ok := MatchRule(tt.pattern, tt.path)
		if ok != tt.ok || (ok && !maps.Equal(params, tt.params)) {
			t.Errorf("MatchRule(%q, %q) = %v, %v; want %v, %v", tt.pattern, tt.path, params, ok, tt.params, tt.ok)
		}
	}
}

func TestExpandRedirect(t *testing.T) {
	p := map[string]string{"splat": "a/b", "year": "2024"}
	tests := map[string]string{
		"/new/:splat":              "/new/a/b",
		"/y/:year/:splat":          "/y/2024/a/b",
		"/keep/:unknown":           "/keep/:unknown",
		"https://x.example/:splat": "https://x.example/a/b",
		"/plain":                   "/plain",
		"/colon:":                  "/colon:",
	}
	for to, want := range tests {
		if got := ExpandRedirect(to, p); got != want {
			t.Errorf("ExpandRedirect(%q) = %q, want %q", to, got, want)
		}
	}
}

func FuzzMatchRule(f *testing.F) {
	f.Add("/blog/*", "/blog/x")
	f.Add("/:a/:b", "/x/y")
	f.Add("/u/:id/*", "/u/1/2/3")
	f.Fuzz(func(t *testing.T, pattern, path string) {
		params, ok := MatchRule(pattern, path)
		if !ok {
			return
		}
		if s, has := params["splat"]; has && strings.HasSuffix(pattern, "*") && !strings.Contains(pattern, ":") {
			prefix := strings.TrimSuffix(pattern, "*")
			if path != strings.TrimSuffix(prefix, "/") && path != prefix+s {
				t.Fatalf("splat %q does not rebuild %q from %q", s, path, pattern)
			}
		}
		_ = ExpandRedirect("/x/:splat", params)
	})
}
