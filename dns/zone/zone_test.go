package zone

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

const exampleZone = `$ORIGIN example.com.
$TTL 300
@       IN SOA ns1 hostmaster 2024010101 7200 900 1209600 60
@       IN NS  ns1
@       IN NS  ns2.example.net.
@       IN MX  10 mail
@       IN MX  20 mail2.example.net.
@       IN TXT "v=spf1 mx -all"
ns1     IN A   192.0.2.53
mail    IN A   192.0.2.25
www 60  IN A   192.0.2.1
www 60  IN A   192.0.2.2
WWW 60  IN A   192.0.2.2 ; a duplicate, in another case
www     IN AAAA 2001:db8::1
alias   IN CNAME www
*.wild  IN A   192.0.2.99
sel._domainkey IN TXT "v=DKIM1; k=rsa; p=MIGf"
sub     IN NS  ns.sub
ns.sub  IN A   192.0.2.54
a.b.c   IN A   192.0.2.3
`

func mustParse(t *testing.T, text string) *Zone {
	t.Helper()
	z, err := Parse(strings.NewReader(text), "test.zone", Options{})
	if err != nil {
		t.Fatal(err)
	}
	return z
}

func TestParseExample(t *testing.T) {
	z := mustParse(t, exampleZone)
	if z.Apex != "example.com." {
		t.Fatalf("apex %q", z.Apex)
	}
	if z.Serial() != 2024010101 {
		t.Errorf("serial %d", z.Serial())
	}
	if last := z.Sets[len(z.Sets)-1]; last.Type != dns.TypeSOA {
		t.Errorf("last set is %s, want the SOA", typeName(last.Type))
	}
	find := func(name string, typ uint16) *Set {
		for i := range z.Sets {
			if z.Sets[i].Name == name && z.Sets[i].Type == typ {
				return &z.Sets[i]
			}
		}
		t.Fatalf("no %s %s", name, typeName(typ))
		return nil
	}
	www := find("www.example.com.", dns.TypeA)
	if want := []string{"192.0.2.1", "192.0.2.2"}; !slices.Equal(www.Data, want) || www.TTL != 60 {
		t.Errorf("www A = %v ttl %d, want %v ttl 60 (the duplicate collapsed)", www.Data, www.TTL, want)
	}
	if mx := find("example.com.", dns.TypeMX); !slices.Equal(mx.Data, []string{"10 mail.example.com.", "20 mail2.example.net."}) || mx.TTL != 300 {
		t.Errorf("MX = %v ttl %d", mx.Data, mx.TTL)
	}
	if z.Records != 17 {
		t.Errorf("records = %d, want 17", z.Records)
	}
	// Every set survives its trip through the table.
	for i := range z.Sets {
		s := &z.Sets[i]
		body, err := s.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		back, rrs, err := DecodeSet(s.Key(), body)
		if err != nil {
			t.Fatalf("%s: %v", s.Key(), err)
		}
		if back.Name != s.Name || back.Type != s.Type || back.TTL != s.TTL || !slices.Equal(back.Data, s.Data) || len(rrs) != len(s.Data) {
			t.Errorf("%s: round trip gave %+v", s.Key(), back)
		}
	}
}

func TestParseRefusesBadZones(t *testing.T) {
	const head = "$ORIGIN example.com.\n$TTL 300\n@ SOA ns1 hm 1 2 3 4 5\n@ NS ns1\nns1 A 192.0.2.1\n"
	cases := []struct {
		name, text, want string
	}{
		{"syntax", head + "www IN A 300.1.1.1\n", "syntax"},
		{"no SOA", "$ORIGIN example.com.\n@ NS ns1\n", "no SOA"},
		{"two SOAs", head + "sub SOA ns1 hm 1 2 3 4 5\n", "2 SOA"},
		{"no NS", "$ORIGIN example.com.\n@ SOA ns1 hm 1 2 3 4 5\n", "no NS"},
		{"outside", head + "www.example.org. A 192.0.2.1\n", "outside the zone"},
		{"class", head + "www CH A 192.0.2.1\n", "class"},
		{"cname and other", head + "www CNAME x\nwww A 192.0.2.1\n", "other data"},
		{"cname at apex", head + "@ CNAME x\n", "apex"},
		{"two cnames", head + "www CNAME x\nwww CNAME y\n", "at most one CNAME"},
		{"ttl mismatch", head + "www 10 A 192.0.2.1\nwww 20 A 192.0.2.2\n", "TTLs"},
		{"dnssec", head + "@ DNSKEY 257 3 8 AwEAAc==\n", "DNSSEC"},
		{"occluded", head + "sub NS ns.sub\nx.sub TXT \"hidden\"\n", "below the delegation"},
		{"data at cut", head + "sub NS ns.sub\nsub MX 10 x\n", "at the delegation"},
		{"include", head + "$INCLUDE /etc/passwd\n", "syntax"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse(strings.NewReader(c.text), "bad.zone", Options{})
			if err == nil {
				t.Fatal("parsed")
			}
			if !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrSyntax) {
				t.Errorf("error %v wraps neither ErrInvalid nor ErrSyntax", err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not say %q", err, c.want)
			}
		})
	}
}

func TestParseOrigin(t *testing.T) {
	text := "@ 300 SOA ns1 hm 1 2 3 4 5\n@ 300 NS ns1\nns1 300 A 192.0.2.1\n"
	z, err := Parse(strings.NewReader(text), "rel.zone", Options{Origin: "Example.ORG"})
	if err != nil {
		t.Fatal(err)
	}
	if z.Apex != "example.org." {
		t.Errorf("apex %q", z.Apex)
	}
	if _, err := Parse(strings.NewReader("$ORIGIN a.example.\n"+text), "x", Options{Origin: "b.example."}); err == nil {
		t.Error("a SOA away from the given origin was accepted")
	}
}

func TestDiff(t *testing.T) {
	z := mustParse(t, exampleZone)
	c, err := Diff(z, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Put) != len(z.Sets) || len(c.Delete) != 0 {
		t.Fatalf("first diff: put %d delete %d, want put %d", len(c.Put), len(c.Delete), len(z.Sets))
	}
	have := map[string][]byte{"site/current": []byte("{}"), "dns/other.example./x.other.example./A": []byte("{}")}
	for i, s := range c.Put {
		have[s.Key()] = c.PutBodies[i]
	}
	c, _ = Diff(z, have)
	if !c.Empty() || c.Unchanged != len(z.Sets) {
		t.Fatalf("diff against itself: %+v", c)
	}
	// Drop a record and a whole set, change a TTL.
	edited := strings.Replace(exampleZone, "www 60  IN A   192.0.2.2\n", "", 1)
	edited = strings.Replace(edited, "WWW 60  IN A   192.0.2.2 ; a duplicate, in another case\n", "", 1)
	edited = strings.Replace(edited, "a.b.c   IN A   192.0.2.3\n", "", 1)
	edited = strings.Replace(edited, "mail    IN A", "mail 30 IN A", 1)
	c, err = Diff(mustParse(t, edited), have)
	if err != nil {
		t.Fatal(err)
	}
	var put []string
	for _, s := range c.Put {
		put = append(put, s.Key())
	}
	if want := []string{"dns/example.com./mail.example.com./A", "dns/example.com./www.example.com./A"}; !slices.Equal(put, want) {
		t.Errorf("put %v, want %v", put, want)
	}
	if want := []string{"dns/example.com./a.b.c.example.com./A"}; !slices.Equal(c.Delete, want) {
		t.Errorf("delete %v, want %v (never another zone's keys)", c.Delete, want)
	}
	if got := Zones([]string{"site/x", "dns/b.example./q", "dns/a.example./q", "dns/a.example./r"}); !slices.Equal(got, []string{"a.example.", "b.example."}) {
		t.Errorf("Zones = %v", got)
	}
}

func TestDecodeSetRefusesTampering(t *testing.T) {
	s := Set{Zone: "example.com.", Name: "www.example.com.", Type: dns.TypeA, TTL: 60, Data: []string{"192.0.2.1"}}
	good, err := s.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	bad := map[string]string{
		"other key":        "dns/example.com./evil.example.com./A",
		"smuggled record":  strings.Replace(string(good), `"192.0.2.1"`, `"192.0.2.1\nevil.example.com. 60 IN A 192.0.2.66"`, 1),
		"outside the zone": strings.Replace(string(good), `"www.example.com."`, `"www.example.org."`, 1),
		"not canonical":    strings.Replace(string(good), `"192.0.2.1"`, `"192.000.2.1"`, 1),
		"refused type":     strings.Replace(string(good), `"A"`, `"RRSIG"`, 1),
		"unknown field":    strings.Replace(string(good), `{`, `{"extra":1,`, 1),
		"version":          strings.Replace(string(good), `"v":1`, `"v":2`, 1),
	}
	for name, body := range bad {
		key := s.Key()
		if name == "other key" {
			key, body = body, string(good)
		}
		if _, _, err := DecodeSet(key, []byte(body)); !errors.Is(err, ErrBadSet) {
			t.Errorf("%s: err = %v, want ErrBadSet", name, err)
		}
	}
}

func TestUnknownTypesRoundTrip(t *testing.T) {
	z := mustParse(t, "$ORIGIN example.com.\n@ 60 SOA ns1 hm 1 2 3 4 5\n@ 60 NS ns1\nx 60 TYPE65280 \\# 3 abcdef\nx/y 60 TXT slash\n")
	for i := range z.Sets {
		s := &z.Sets[i]
		body, _ := s.Marshal()
		if _, _, err := DecodeSet(s.Key(), body); err != nil {
			t.Errorf("%s: %v", s.Key(), err)
		}
	}
	if got := Zones([]string{z.Sets[0].Key()}); !slices.Equal(got, []string{"example.com."}) {
		t.Errorf("Zones = %v", got)
	}
}
