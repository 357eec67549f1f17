package challenge

import (
	"errors"
	"strings"
	"testing"
	"time"
)

const (
	value = "LPsIwTo7o8BoG0-vjCyGQGBWSVIPxI-i_X336eUOQZo"
	token = "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA"
	thumb = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
)

func TestDNS01RoundTrip(t *testing.T) {
	exp := time.Unix(1767225600, 0)
	r, err := NewDNS01("cdn.example.com", []string{value, "b" + value[1:], value}, exp)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.TXT) != 2 || r.TXT[0] > r.TXT[1] {
		t.Fatalf("TXT = %q, want two sorted values", r.TXT)
	}
	b, err := r.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	key := DNS01Key("cdn.example.com")
	got, err := ParseDNS01At(key, b)
	if err != nil || got.Domain != r.Domain || strings.Join(got.TXT, ",") != strings.Join(r.TXT, ",") || got.Expires != r.Expires {
		t.Fatalf("ParseDNS01At = %+v, %v; want %+v", got, err, r)
	}
	if d, ok := ParseDNS01Key(key); !ok || d != "cdn.example.com" {
		t.Errorf("ParseDNS01Key(%q) = %q, %v", key, d, ok)
	}
	if _, err := ParseDNS01At(DNS01Key("other.example.com"), b); !errors.Is(err, ErrInvalid) {
		t.Errorf("record under another domain's key: %v, want ErrInvalid", err)
	}
	if !got.Live(exp.Add(-time.Second)) || got.Live(exp) {
		t.Error("Live does not end at Expires")
	}
	if DNSName("cdn.example.com") != "_acme-challenge.cdn.example.com" {
		t.Error("DNSName")
	}
}

func TestHTTP01RoundTrip(t *testing.T) {
	r := HTTP01{V: 1, Domain: "www.example.com", Token: token, KeyAuthorization: token + "." + thumb, Expires: 1767225600}
	b, err := r.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseHTTP01At(HTTP01Key(token), b)
	if err != nil || got != r {
		t.Fatalf("ParseHTTP01At = %+v, %v; want %+v", got, err, r)
	}
	if tok, ok := ParseHTTP01Key(HTTP01Key(token)); !ok || tok != token {
		t.Errorf("ParseHTTP01Key = %q, %v", tok, ok)
	}
	if _, err := ParseHTTP01At(HTTP01Key("x"+token), b); !errors.Is(err, ErrInvalid) {
		t.Errorf("record under another token's key: %v, want ErrInvalid", err)
	}
}

func TestRefused(t *testing.T) {
	good := HTTP01{V: 1, Domain: "www.example.com", Token: token, KeyAuthorization: token + "." + thumb, Expires: 1}
	for name, r := range map[string]HTTP01{
		"version":        {V: 2, Domain: good.Domain, Token: token, KeyAuthorization: good.KeyAuthorization, Expires: 1},
		"wildcard":       {V: 1, Domain: "*.example.com", Token: token, KeyAuthorization: good.KeyAuthorization, Expires: 1},
		"upper domain":   {V: 1, Domain: "WWW.example.com", Token: token, KeyAuthorization: good.KeyAuthorization, Expires: 1},
		"token slash":    {V: 1, Domain: good.Domain, Token: "a/b", KeyAuthorization: "a/b." + thumb, Expires: 1},
		"other token":    {V: 1, Domain: good.Domain, Token: token, KeyAuthorization: "x." + thumb, Expires: 1},
		"no expiry":      {V: 1, Domain: good.Domain, Token: token, KeyAuthorization: good.KeyAuthorization},
		"empty thumb":    {V: 1, Domain: good.Domain, Token: token, KeyAuthorization: token + ".", Expires: 1},
		"long token":     {V: 1, Domain: good.Domain, Token: strings.Repeat("a", MaxValueLen+1), KeyAuthorization: "a." + thumb, Expires: 1},
		"trailing dot":   {V: 1, Domain: "www.example.com.", Token: token, KeyAuthorization: good.KeyAuthorization, Expires: 1},
		"empty label":    {V: 1, Domain: "www..com", Token: token, KeyAuthorization: good.KeyAuthorization, Expires: 1},
		"hyphen at edge": {V: 1, Domain: "www-.com", Token: token, KeyAuthorization: good.KeyAuthorization, Expires: 1},
	} {
		if _, err := r.Marshal(); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: Marshal = %v, want ErrInvalid", name, err)
		}
	}
	for name, in := range map[string]string{
		"no values":     `{"v":1,"domain":"example.com","txt":[],"expires":1}`,
		"unsorted":      `{"v":1,"domain":"example.com","txt":["b","a"],"expires":1}`,
		"too many":      `{"v":1,"domain":"example.com","txt":["a","b","c","d","e","f","g","h","i"],"expires":1}`,
		"unknown field": `{"v":1,"domain":"example.com","txt":["a"],"expires":1,"x":1}`,
		"trailing":      `{"v":1,"domain":"example.com","txt":["a"],"expires":1} {}`,
		"space in txt":  `{"v":1,"domain":"example.com","txt":["a b"],"expires":1}`,
	} {
		if _, err := ParseDNS01At(DNS01Key("example.com"), []byte(in)); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: ParseDNS01At = %v, want ErrInvalid", name, err)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add("acme/dns-01/example.com", []byte(`{"v":1,"domain":"example.com","txt":["`+value+`"],"expires":1}`))
	f.Add("acme/http-01/"+token, []byte(`{"v":1,"domain":"a.example","token":"`+token+`","key_authorization":"`+token+`.`+thumb+`","expires":1}`))
	f.Fuzz(func(t *testing.T, key string, b []byte) {
		if r, err := ParseDNS01At(key, b); err == nil {
			out, err := r.Marshal()
			if err != nil {
				t.Fatalf("accepted DNS01 does not marshal: %v", err)
			}
			if _, err := ParseDNS01At(key, out); err != nil {
				t.Fatalf("re-parse: %v", err)
			}
		}
		if r, err := ParseHTTP01At(key, b); err == nil {
			out, err := r.Marshal()
			if err != nil {
				t.Fatalf("accepted HTTP01 does not marshal: %v", err)
			}
			if again, err := ParseHTTP01At(key, out); err != nil || again != r {
				t.Fatalf("re-parse = %+v, %v", again, err)
			}
		}
	})
}

func TestDigest(t *testing.T) {
	a, b := DNS01Key("example.com"), HTTP01Key(token)
	if Digest([]string{a, b}) != Digest([]string{b, a}) {
		t.Error("Digest depends on the order of keys")
	}
	if Digest([]string{a}) == Digest([]string{a, b}) || Digest(nil) == Digest([]string{a}) {
		t.Error("Digest does not tell sets apart")
	}
	if len(Digest(nil)) != DigestLen {
		t.Errorf("len = %d", len(Digest(nil)))
	}
}
