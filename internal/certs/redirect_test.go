package certs

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"testing"
)

// unreachableACME is a directory URL nothing listens on: tests that must not obtain
// certificates use it, so an attempt fails instead of reaching a real CA.
const unreachableACME = "https://127.0.0.1:1/directory"

func newACME(t testing.TB, dir string, domains ...string) *Manager {
	t.Helper()
	m, err := New(Config{Domains: domains, CacheDir: dir, ACMEDirectory: unreachableACME})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestHTTPHandlerRedirect(t *testing.T) {
	h := newACME(t, t.TempDir(), "e1.example.test", "e2.example.test").HTTPHandler(nil)
	tests := []struct {
		method, host, target string
		status               int
		location             string
	}{
		{"GET", "e1.example.test", "/", 308, "https://e1.example.test/"},
		{"GET", "e1.example.test", "/a/b.html?x=1&y=%20z", 308, "https://e1.example.test/a/b.html?x=1&y=%20z"},
		{"GET", "e2.example.test:80", "/p?", 308, "https://e2.example.test/p?"},
		{"HEAD", "E1.Example.TEST.:8080", "/%2e%2e/x", 308, "https://e1.example.test/%2e%2e/x"},
		{"POST", "e1.example.test", "/form", 308, "https://e1.example.test/form"},
		{"GET", "e1.example.test", "//evil.example/x", 308, "https://e1.example.test//evil.example/x"},
		{"GET", "http://e1.example.test/abs?q", "", 308, "https://e1.example.test/abs?q"},
		{"GET", "other.example.test", "/", 404, ""},
		{"GET", "example.test", "/", 404, ""},
		{"GET", "127.0.0.1", "/", 404, ""},
		{"GET", "[::1]:80", "/", 404, ""},
		{"GET", "other.example.test", "/.well-known/acme-challenge/x", 404, ""},
		{"GET", "bad_host", "/", 400, ""},
		{"GET", "", "/", 400, ""},
		{"OPTIONS", "e1.example.test", "*", 400, ""},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.host+tt.target, func(t *testing.T) {
			r := newRequest(tt.method, tt.host, tt.target)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tt.status || w.Header().Get("Location") != tt.location {
				t.Errorf("got %d Location %q, want %d %q", w.Code, w.Header().Get("Location"), tt.status, tt.location)
			}
		})
	}
}

// newRequest builds a request as net/http's server does: the target parsed by
// url.ParseRequestURI, and for an absolute-form target (RFC 9112 §3.2.2), passed in host with
// an empty target, the host taken from it.
func newRequest(method, host, target string) *http.Request {
	if target == "" {
		target, host = host, ""
	}
	u, err := url.ParseRequestURI(target)
	if err != nil {
		panic(err)
	}
	if u.Host != "" {
		host = u.Host
	}
	return &http.Request{Method: method, URL: u, RequestURI: target, Host: host,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Header: http.Header{}}
}

func TestHTTPHandlerLocal(t *testing.T) {
	m := newLocal(t, t.TempDir(), start)

	redirect := m.HTTPHandler(nil)
	for host, want := range map[string]string{
		"localhost:8080":   "https://localhost/x?y",
		"[::1]:8080":       "https://[::1]/x?y",
		"[::FFFF:1.2.3.4]": "https://[::ffff:1.2.3.4]/x?y",
		"127.0.0.1":        "https://127.0.0.1/x?y",
		"anyname.lan":      "https://anyname.lan/x?y",
	} {
		w := httptest.NewRecorder()
		redirect.ServeHTTP(w, newRequest("GET", host, "/x?y"))
		if w.Code != http.StatusPermanentRedirect || w.Header().Get("Location") != want {
			t.Errorf("%s: got %d %q, want 308 %q", host, w.Code, w.Header().Get("Location"), want)
		}
	}
	w := httptest.NewRecorder()
	redirect.ServeHTTP(w, newRequest("GET", "[fe80::1%25eth0]", "/"))
	if w.Code != http.StatusBadRequest {
		t.Errorf("zoned address: got %d, want 400", w.Code)
	}

	fallback := m.HTTPHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "content "+r.URL.Path)
	}))
	for _, path := range []string{"/x", acmeChallengePrefix + "tok"} {
		w := httptest.NewRecorder()
		fallback.ServeHTTP(w, newRequest("GET", "localhost:8080", path))
		if w.Code != http.StatusOK || w.Body.String() != "content "+path {
			t.Errorf("fallback %s: got %d %q", path, w.Code, w.Body)
		}
	}
}

// TestHTTPHandlerChallenge checks that challenge paths reach autocert's http-01 responder: a
// key authorization autocert keeps in its cache is served for a configured host, with or
// without a port, and nothing is redirected.
func TestHTTPHandlerChallenge(t *testing.T) {
	dir := t.TempDir()
	h := newACME(t, dir, "e1.example.test").HTTPHandler(nil)
	// autocert stores http-01 responses under "<token>+http-01" (autocert.httpTokenCacheKey).
	if err := os.WriteFile(filepath.Join(dir, "tok123+http-01"), []byte("tok123.thumbprint"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{"e1.example.test", "e1.example.test:5002", "E1.EXAMPLE.TEST."} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, newRequest("GET", host, acmeChallengePrefix+"tok123"))
		if w.Code != http.StatusOK || w.Body.String() != "tok123.thumbprint" {
			t.Errorf("%s: got %d %q, want the key authorization", host, w.Code, w.Body)
		}
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, newRequest("GET", "e1.example.test", acmeChallengePrefix+"unknown"))
	if w.Code != http.StatusNotFound || w.Header().Get("Location") != "" {
		t.Errorf("unknown token: got %d Location %q, want 404 without redirect", w.Code, w.Header().Get("Location"))
	}
}
