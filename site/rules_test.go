package site

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParseRedirects(t *testing.T) {
	in := "\xef\xbb\xbf# comment\n" +
		"\n" +
		"/old /new\r\n" +
		"  /blog/*   /posts/:splat   302  \n" +
		"/news/:year/:slug /n/:year/:slug 301!\n" +
		"/app/* /index.html 200\n" +
		"/gone /410.html 410\n" +
		"/ext https://example.com/x 308\n" +
		"/spa/* /spa/index.html 200!\n"
	got, err := ParseRedirects("_redirects", strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []Redirect{
		{From: "/old", To: "/new", Status: 301},
		{From: "/blog/*", To: "/posts/:splat", Status: 302},
		{From: "/news/:year/:slug", To: "/n/:year/:slug", Status: 301, Force: true},
		{From: "/app/*", To: "/index.html", Status: 200},
		{From: "/gone", To: "/410.html", Status: 410},
		{From: "/ext", To: "https://example.com/x", Status: 308},
		{From: "/spa/*", To: "/spa/index.html", Status: 200, Force: true},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
	// What the parser accepts, the edge's matcher carries out as written.
	params, ok := MatchRule(got[2].From, "/news/2024/hello")
	if !ok || ExpandRedirect(got[2].To, params) != "/n/2024/hello" {
		t.Fatalf("rule 3 does not rewrite /news/2024/hello: %v %v", params, ok)
	}
}

func TestParseRedirectsErrors(t *testing.T) {
	tests := []struct {
		line string
		msg  string
	}{
		{"/only", "needs a path and a target"},
		{"/a /b 999", "status 999"},
		{"/a /b 300", "status 300"},
		{"/a /b abc", "not a number"},
		{"/a /b 3011", "not a number"},
		{"/a /b 301 extra", "unexpected"},
		{"/a /b 302 Country=us", "conditions"},
		{"/a /b Role=admin", "conditions"},
		{"/store id=:id /blog/:id", "query matching"},
		{"/a javascript:alert(1) 302", "to: target must be"},
		{"/a data:text/html,x", "to: target must be"},
		{"/a vbscript://x 302", "scheme"},
		{"/a //evil.example 302", "protocol-relative"},
		{"/a https://x.example/ 200", "proxying"},
		{"/a https://x.example/ 404", "must be a site path"},
		{"/a/:splat /b", "reserved"},
		{"/a /b/:splat", "does not end in *"},
		{"relative /b", "from: pattern must be"},
		{"https://x.example/* /b", "domain-level"},
		{"/a\x00 /b", "control"},
		{"/a /b\xff", "UTF-8"},
	}
	for _, tt := range tests {
		in := "# header\n\n" + tt.line + "\n"
		_, err := ParseRedirects("site/_redirects", strings.NewReader(in))
		var re *RuleError
		if !errors.As(err, &re) || !errors.Is(err, ErrInvalidRule) {
			t.Errorf("%q: err = %v, want a *RuleError", tt.line, err)
			continue
		}
		if re.File != "site/_redirects" || re.Line != 3 || !strings.Contains(re.Msg, tt.msg) {
			t.Errorf("%q: got %s:%d: %s; want site/_redirects:3 saying %q", tt.line, re.File, re.Line, re.Msg, tt.msg)
		}
		if !strings.HasPrefix(err.Error(), "site/_redirects:3: ") {
			t.Errorf("%q: message %q does not start with file:line", tt.line, err)
		}
	}
}

func TestParseRulesReportsSeveralErrorsAndLongLines(t *testing.T) {
	_, err := ParseRedirects("_redirects", strings.NewReader("/a /b 999\n/ok /fine\n/c\n"))
	if err == nil || !strings.Contains(err.Error(), "_redirects:1:") || !strings.Contains(err.Error(), "_redirects:3:") {
		t.Fatalf("want errors for lines 1 and 3, got %v", err)
	}
	long := "/a /" + strings.Repeat("b", MaxRuleLine) + "\n"
	_, err = ParseRedirects("_redirects", strings.NewReader("/x /y\n"+long))
	var re *RuleError
	if !errors.As(err, &re) || re.Line != 2 || !strings.Contains(re.Msg, "longer") {
		t.Fatalf("long line: %v", err)
	}
	var many strings.Builder
	for range 50 {
		many.WriteString("bad\n")
	}
	_, err = ParseRedirects("_redirects", strings.NewReader(many.String()))
	if n := strings.Count(err.Error(), "\n") + 1; n != maxRuleErrors {
		t.Fatalf("%d errors reported, want %d", n, maxRuleErrors)
	}
}

func TestParseHeaders(t *testing.T) {
	in := "# security\n" +
		"/*\n" +
		"  X-Frame-Options: DENY\n" +
		"  Content-Security-Policy: default-src 'self'; img-src *\n" +
		"\n" +
		"/assets/*\n" +
		"\tCache-Control: public, max-age=31536000, immutable\n" +
		"  Link: </a.css>; rel=preload; as=style\n" +
		"  Link: </b.js>; rel=preload; as=script\n" +
		"/u/:id\n" +
		"X-Empty-Indent:   value with spaces   \n"
	got, err := ParseHeaders("_headers", strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []HeaderRule{
		{Path: "/*", Values: [][2]string{{"X-Frame-Options", "DENY"}, {"Content-Security-Policy", "default-src 'self'; img-src *"}}},
		{Path: "/assets/*", Values: [][2]string{
			{"Cache-Control", "public, max-age=31536000, immutable"},
			{"Link", "</a.css>; rel=preload; as=style"},
			{"Link", "</b.js>; rel=preload; as=script"},
		}},
		{Path: "/u/:id", Values: [][2]string{{"X-Empty-Indent", "value with spaces"}}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
}

func TestParseHeadersErrors(t *testing.T) {
	tests := []struct {
		in   string
		line int
		msg  string
	}{
		{"  X-A: b\n", 1, "before any path"},
		{"/a\n  no colon here\n", 2, "Name: value"},
		{"/a\n  Bad Name: x\n", 2, "not a token"},
		{"/a\n  X-A : x\n", 2, "not a token"},
		{"/a\n  X-A:\n", 2, "empty value"},
		{"/a\n  X-A: a\x00b\n", 2, "control character"},
		{"/a\n  X-A: a\rSet-Cookie: x\n", 2, "control character"},
		{"/a\n  Content-Length: 5\n", 2, "may not be set"},
		{"/a\n  transfer-encoding: chunked\n", 2, "may not be set"},
		{"/a\n  X-A: " + strings.Repeat("v", MaxHeaderValue+1) + "\n", 2, "longer than"},
		{"/a\n/b\n  X-A: 1\n", 1, "no headers"},
		{"/a\n  X-A: 1\n/b\n", 3, "no headers"},
		{"https://x.example/*\n  X-A: 1\n", 1, "domain-level"},
		{"/a b\n  X-A: 1\n", 1, "white space"},
		{"/a/../b\n  X-A: 1\n", 1, "dot segment"},
	}
	for _, tt := range tests {
		_, err := ParseHeaders("_headers", strings.NewReader(tt.in))
		var re *RuleError
		if !errors.As(err, &re) {
			t.Errorf("%q: err = %v, want a *RuleError", tt.in, err)
			continue
		}
		if re.Line != tt.line || !strings.Contains(re.Msg, tt.msg) {
			t.Errorf("%q: got line %d %q, want line %d saying %q", tt.in, re.Line, re.Msg, tt.line, tt.msg)
		}
	}
}

// FuzzParseRedirects checks that the parser never panics, that every rule it accepts passes the
// manifest's own check, and that the rules survive a manifest round trip.
func FuzzParseRedirects(f *testing.F) {
	f.Add("/old /new\n/blog/* /posts/:splat 302!\n")
	f.Add("# c\n/a https://example.com/x 308\n/b /c 200\n")
	f.Add("/:a/:b/* /x/:b/:a/:splat 301\n")
	f.Add("/a javascript:alert(1)\n/s id=:id /b\n")
	f.Add("\xef\xbb\xbf/a\t/b\r\n")
	f.Fuzz(func(t *testing.T, in string) {
		rules, err := ParseRedirects("_redirects", strings.NewReader(in))
		if err != nil {
			var re *RuleError
			if !errors.As(err, &re) || re.Line < 1 {
				t.Fatalf("error without a line: %v", err)
			}
			return
		}
		for _, r := range rules {
			if why := checkRedirect(r); why != "" {
				t.Fatalf("accepted %+v that the manifest refuses: %s", r, why)
			}
		}
		roundTripRules(t, rules, nil)
	})
}

// FuzzParseHeaders is FuzzParseRedirects for _headers.
func FuzzParseHeaders(f *testing.F) {
	f.Add("/*\n  X-Frame-Options: DENY\n")
	f.Add("/a/:id/*\n\tCache-Control: no-cache\n  Link: </x>; rel=preload\n/b\n  X: 1\n")
	f.Add("/a\n  X: a\rb\n")
	f.Add("X: 1\n/a\n")
	f.Fuzz(func(t *testing.T, in string) {
		rules, err := ParseHeaders("_headers", strings.NewReader(in))
		if err != nil {
			var re *RuleError
			if !errors.As(err, &re) || re.Line < 1 {
				t.Fatalf("error without a line: %v", err)
			}
			return
		}
		for _, h := range rules {
			if why := checkHeaderRule(h); why != "" {
				t.Fatalf("accepted %+v that the manifest refuses: %s", h, why)
			}
			for _, kv := range h.Values {
				if strings.ContainsAny(kv[0]+kv[1], "\r\n\x00") {
					t.Fatalf("header %q: %q carries CR, LF or NUL", kv[0], kv[1])
				}
			}
		}
		roundTripRules(t, nil, rules)
	})
}
