package zone

import (
	"slices"
	"strings"
	"testing"
)

// FuzzParse feeds arbitrary zone files to Parse: it must never panic, and every zone it accepts
// must survive the trip through the table (Marshal, DecodeSet) unchanged, with a Diff against
// itself that changes nothing.
func FuzzParse(f *testing.F) {
	f.Add(exampleZone)
	f.Add("$ORIGIN example.com.\n@ 60 SOA ns1 hm 1 2 3 4 5\n@ 60 NS ns1\nx 60 TYPE65280 \\# 3 abcdef\n")
	f.Add("$ORIGIN a.\n$TTL 1\n@ SOA a. a. 1 1 1 1 1\n@ NS a.\n$GENERATE 1-3 h$ A 192.0.2.$\n")
	f.Add("@ SOA ( ns1 hm\n 1 2 3 4 5 )\n")
	f.Add("$ORIGIN example.com.\n@ 60 SOA ns1 hm 1 2 3 4 5\n@ 60 NS ns1\n\\046x 60 TXT \"a\\\"b\" c\n*.w 60 CAA 0 issue \"ca.example\"\n")
	f.Fuzz(func(t *testing.T, text string) {
		z, err := Parse(strings.NewReader(text), "fuzz.zone", Options{MaxRecords: 1000})
		if err != nil {
			return
		}
		have := map[string][]byte{}
		for i := range z.Sets {
			s := &z.Sets[i]
			body, err := s.Marshal()
			if err != nil {
				t.Fatalf("accepted set does not encode: %v", err)
			}
			back, _, err := DecodeSet(s.Key(), body)
			if err != nil {
				t.Fatalf("accepted set %s does not decode: %v\nbody %s", s.Key(), err, body)
			}
			if back.Name != s.Name || back.Type != s.Type || back.TTL != s.TTL || !slices.Equal(back.Data, s.Data) {
				t.Fatalf("round trip changed %s", s.Key())
			}
			if _, dup := have[s.Key()]; dup {
				t.Fatalf("two sets under %s", s.Key())
			}
			have[s.Key()] = body
		}
		c, err := Diff(z, have)
		if err != nil || !c.Empty() {
			t.Fatalf("diff against itself: %+v %v", c, err)
		}
	})
}

// FuzzDecodeSet feeds arbitrary bodies to DecodeSet, as a node reads them from the table: it must
// never panic, and a body it accepts re-encodes to itself.
func FuzzDecodeSet(f *testing.F) {
	f.Add("dns/example.com./www.example.com./A", `{"data":["192.0.2.1"],"name":"www.example.com.","ttl":60,"type":"A","v":1,"zone":"example.com."}`)
	f.Add("dns/example.com./x.example.com./TYPE65280", `{"data":["\\# 3 abcdef"],"name":"x.example.com.","ttl":60,"type":"TYPE65280","v":1,"zone":"example.com."}`)
	f.Fuzz(func(t *testing.T, key, body string) {
		s, rrs, err := DecodeSet(key, []byte(body))
		if err != nil {
			return
		}
		if len(rrs) != len(s.Data) {
			t.Fatalf("%d records for %d data", len(rrs), len(s.Data))
		}
		again, err := s.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := DecodeSet(key, again); err != nil {
			t.Fatalf("re-encoded body refused: %v", err)
		}
	})
}
