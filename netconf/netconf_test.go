package netconf

import (
	"errors"
	"strings"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	for _, s := range []Settings{{V: 1}, {V: 1, CDNZone: "cdn.example.com"}} {
		b, err := s.Marshal()
		if err != nil {
			t.Fatalf("Marshal(%+v): %v", s, err)
		}
		got, err := ParseSettings(b)
		if err != nil {
			t.Fatalf("ParseSettings(%s): %v", b, err)
		}
		if got != s {
			t.Errorf("round trip of %+v gave %+v", s, got)
		}
	}
	b, _ := Settings{V: 1, CDNZone: "cdn.example.com"}.Marshal()
	if want := `{"v":1,"cdn_zone":"cdn.example.com"}`; string(b) != want {
		t.Errorf("Marshal = %s, want %s", b, want)
	}
}

func TestParseRefuses(t *testing.T) {
	for name, in := range map[string]string{
		"not json":      `{"v":1`,
		"trailing data": `{"v":1}{}`,
		"version":       `{"v":2}`,
		"no version":    `{"cdn_zone":"cdn.example.com"}`,
		"one label":     `{"v":1,"cdn_zone":"com"}`,
		"upper case":    `{"v":1,"cdn_zone":"CDN.example.com"}`,
		"trailing dot":  `{"v":1,"cdn_zone":"cdn.example.com."}`,
		"empty label":   `{"v":1,"cdn_zone":"cdn..example.com"}`,
		"hyphen first":  `{"v":1,"cdn_zone":"-cdn.example.com"}`,
		"underscore":    `{"v":1,"cdn_zone":"c_dn.example.com"}`,
		"wildcard":      `{"v":1,"cdn_zone":"*.example.com"}`,
		"too long":      `{"v":1,"cdn_zone":"` + strings.Repeat("a.", MaxZoneLen/2) + `com"}`,
		"huge":          `{"v":1,"x":"` + strings.Repeat("a", MaxRecordBytes) + `"}`,
	} {
		if _, err := ParseSettings([]byte(in)); !errors.Is(err, ErrInvalidSettings) {
			t.Errorf("%s: ParseSettings(%.60s) = %v, want ErrInvalidSettings", name, in, err)
		}
	}
}

func TestUnknownFieldsIgnored(t *testing.T) {
	s, err := ParseSettings([]byte(`{"v":1,"cdn_zone":"cdn.example.com","later":{"x":1}}`))
	if err != nil || s.CDNZone != "cdn.example.com" {
		t.Fatalf("ParseSettings with a later field = %+v, %v; want the zone", s, err)
	}
}

func TestNormalizeZone(t *testing.T) {
	if got := NormalizeZone(" CDN.Example.COM. "); got != "cdn.example.com" || CheckZone(got) != nil {
		t.Errorf("NormalizeZone = %q (CheckZone %v)", got, CheckZone(got))
	}
}

func FuzzParseSettings(f *testing.F) {
	f.Add([]byte(`{"v":1,"cdn_zone":"cdn.example.com"}`))
	f.Add([]byte(`{"v":1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseSettings(b)
		if err != nil {
			return
		}
		out, err := s.Marshal()
		if err != nil {
			t.Fatalf("accepted settings %+v do not marshal: %v", s, err)
		}
		again, err := ParseSettings(out)
		if err != nil || again != s {
			t.Fatalf("re-parse of %s = %+v, %v; want %+v", out, again, err, s)
		}
	})
}
