package certs

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// FuzzHTTPHandler feeds arbitrary Host headers and request targets to the port-80 handler and
// checks that it never panics and that every redirect goes to https, port 443, on an allowed
// host: a configured domain in ACME mode, the request's own host in local mode.
func FuzzHTTPHandler(f *testing.F) {
	for _, seed := range [][2]string{
		{"e1.example.test", "/"},
		{"E1.EXAMPLE.TEST.:80", "/a?b=c"},
		{"e1.example.test", "//evil.example/%2f"},
		{"[::1]:8080", "/x"},
		{"evil.example", "/"},
		{"e1.example.test@evil.example", "/"},
		{"e1.example.test", acmeChallengePrefix + "tok"},
		{"e1.example.test", "*"},
		{"[fe80::1%eth0]", "/"},
		{"e1.example.test\r\nX: y", "/"},
		{"", "http://e1.example.test/abs"},
	} {
		f.Add(seed[0], seed[1])
	}
	acmeHandler := newACME(f, f.TempDir(), "e1.example.test").HTTPHandler(nil)
	local, err := New(Config{})
	if err != nil {
		f.Fatal(err)
	}
	localHandler := local.HTTPHandler(nil)

	f.Fuzz(func(t *testing.T, host, target string) {
		u, err := url.ParseRequestURI(target)
		if err != nil {
			return
		}
		if u.Host != "" {
			host = u.Host
		}
		r := &http.Request{Method: "GET", URL: u, RequestURI: target, Host: host, Header: http.Header{},
			Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1}

		w := httptest.NewRecorder()
		acmeHandler.ServeHTTP(w, r)
		switch w.Code {
		case http.StatusPermanentRedirect:
			checkLocation(t, w.Header().Get("Location"), "e1.example.test")
		case http.StatusNotFound, http.StatusBadRequest, http.StatusForbidden:
		default:
			t.Fatalf("ACME mode: status %d for Host %q target %q", w.Code, host, target)
		}

		w = httptest.NewRecorder()
		localHandler.ServeHTTP(w, r)
		switch w.Code {
		case http.StatusPermanentRedirect:
			want, ok := requestHost(host)
			if !ok {
				t.Fatalf("local mode redirected invalid Host %q", host)
			}
			checkLocation(t, w.Header().Get("Location"), want)
		case http.StatusBadRequest:
		default:
			t.Fatalf("local mode: status %d for Host %q target %q", w.Code, host, target)
		}
	})
}

func checkLocation(t *testing.T, loc, host string) {
	t.Helper()
	u, err := url.Parse(loc)
	if err != nil {
		t.Fatalf("Location %q: %v", loc, err)
	}
	if u.Scheme != "https" || u.Hostname() != host || u.Port() != "" || u.User != nil {
		t.Fatalf("Location %q: want https://%s/...", loc, host)
	}
	if !strings.HasPrefix(loc, "https://"+u.Host+"/") {
		t.Fatalf("Location %q does not start with https://%s/", loc, u.Host)
	}
}

// FuzzDecodeLocal decodes arbitrary local-certificate files, which New reads from disk at
// every start.
func FuzzDecodeLocal(f *testing.F) {
	_, valid, err := generateLocal(start, localNames())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid)
	f.Add(valid[:len(valid)/2])
	f.Add([]byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		cert, err := decodeLocal(data)
		if err != nil {
			return
		}
		if cert.Leaf == nil || cert.PrivateKey == nil {
			t.Fatal("decoded certificate without leaf or key")
		}
		_ = reuseProblem(cert.Leaf, start, localNames())
	})
}

// FuzzCachedLeaf decodes arbitrary autocert cache entries, as Expiry does for heartbeats.
func FuzzCachedLeaf(f *testing.F) {
	_, entry, err := generateLocal(start, []string{"e1.example.test"})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(entry)
	f.Add(entry[strings.Index(string(entry), "-----BEGIN CERTIFICATE"):])
	f.Add([]byte("-----BEGIN OTHER-----\n-----END OTHER-----\n"))
	f.Add([]byte("garbage"))
	f.Fuzz(func(t *testing.T, data []byte) {
		leaf, err := cachedLeaf(data)
		if err == nil && leaf == nil {
			t.Fatal("no error and no certificate")
		}
	})
}
