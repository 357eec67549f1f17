package dt

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/dt-cdn/dt/dt/internal/hlc"
)

func testGrantKey(t testing.TB, seed byte) ed25519.PublicKey {
	t.Helper()
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize)).Public().(ed25519.PublicKey)
}

// siteGrant is the scope a site's publisher gets: its own prefix, and the content-addressed
// prefixes put only.
func siteGrant(key ed25519.PublicKey, notBefore, notAfter hlc.Timestamp) Grant {
	return Grant{Key: key, NotBefore: notBefore, NotAfter: notAfter, Scope: []GrantRule{
		{Prefix: "site/blog/", Ops: OpPut | OpDelete},
		{Prefix: "blob/", Ops: OpPut},
		{Prefix: "deploy/", Ops: OpPut},
	}}
}

func TestGrantCanonicalForm(t *testing.T) {
	key := testGrantKey(t, 1)
	b, err := siteGrant(key, 100, 0).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	want := `{"key":"` + hex.EncodeToString(key) + `","not_after":0,"not_before":100,"scope":[` +
		`{"ops":"put","prefix":"blob/"},{"ops":"put","prefix":"deploy/"},{"ops":"put,delete","prefix":"site/blog/"}],"v":1}`
	if string(b) != want {
		t.Fatalf("canonical form:\n got %s\nwant %s", b, want)
	}
	// The table's own canonical JSON agrees, so a grant is also a canonical object.
	if c, err := CanonicalJSON(b); err != nil || !bytes.Equal(c, b) {
		t.Fatalf("CanonicalJSON changed the grant: %s, %v", c, err)
	}
	g, err := ParseGrant(b)
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := g.Marshal(); !bytes.Equal(again, b) {
		t.Fatalf("round trip: %s", again)
	}
	if _, err := CheckGrantRecord(GrantKey(key), b); err != nil {
		t.Fatal(err)
	}
	if _, err := CheckGrantRecord(GrantKey(testGrantKey(t, 2)), b); !errors.Is(err, ErrBadGrant) {
		t.Fatalf("grant under another key's name: %v", err)
	}
}

func TestParseGrantRefuses(t *testing.T) {
	key := hex.EncodeToString(testGrantKey(t, 1))
	good := `{"key":"` + key + `","not_after":0,"not_before":100,"scope":[{"ops":"put","prefix":"blob/"}],"v":1}`
	if _, err := ParseGrant([]byte(good)); err != nil {
		t.Fatalf("good grant: %v", err)
	}
	bad := map[string]string{
		"white space":        strings.Replace(good, `,"v"`, `, "v"`, 1),
		"key order":          `{"v":1,"key":"` + key + `","not_after":0,"not_before":100,"scope":[{"ops":"put","prefix":"blob/"}]}`,
		"unknown field":      strings.Replace(good, `"v":1}`, `"v":1,"x":1}`, 1),
		"missing field":      strings.Replace(good, `"not_after":0,`, ``, 1),
		"duplicate field":    strings.Replace(good, `"v":1}`, `"v":1,"v":1}`, 1),
		"version":            strings.Replace(good, `"v":1}`, `"v":2}`, 1),
		"upper-case key":     strings.Replace(good, key, strings.ToUpper(key), 1),
		"short key":          strings.Replace(good, key, key[:62], 1),
		"no scope":           strings.Replace(good, `[{"ops":"put","prefix":"blob/"}]`, `[]`, 1),
		"null scope":         strings.Replace(good, `[{"ops":"put","prefix":"blob/"}]`, `null`, 1),
		"empty prefix":       strings.Replace(good, `"prefix":"blob/"`, `"prefix":""`, 1),
		"grants prefix":      strings.Replace(good, `"prefix":"blob/"`, `"prefix":"grants/x"`, 1),
		"prefix of grants/":  strings.Replace(good, `"prefix":"blob/"`, `"prefix":"gr"`, 1),
		"ops order":          strings.Replace(good, `"ops":"put"`, `"ops":"delete,put"`, 1),
		"ops unknown":        strings.Replace(good, `"ops":"put"`, `"ops":"get"`, 1),
		"ops empty":          strings.Replace(good, `"ops":"put"`, `"ops":""`, 1),
		"unsorted scope":     strings.Replace(good, `[{"ops":"put","prefix":"blob/"}]`, `[{"ops":"put","prefix":"deploy/"},{"ops":"put","prefix":"blob/"}]`, 1),
		"prefix twice":       strings.Replace(good, `[{"ops":"put","prefix":"blob/"}]`, `[{"ops":"put","prefix":"blob/"},{"ops":"delete","prefix":"blob/"}]`, 1),
		"negative clock":     strings.Replace(good, `"not_before":100`, `"not_before":-1`, 1),
		"fractional clock":   strings.Replace(good, `"not_before":100`, `"not_before":100.0`, 1),
		"exponent clock":     strings.Replace(good, `"not_before":100`, `"not_before":1e2`, 1),
		"escaped key":        strings.Replace(good, `"key"`, `"k\u0065y"`, 1),
		"trailing data":      good + ` `,
		"two values":         good + good,
		"not JSON":           `grant`,
		"too large":          strings.Replace(good, `"prefix":"blob/"`, `"prefix":"`+strings.Repeat("a", MaxGrantSize)+`"`, 1),
		"too many rules":     strings.Replace(good, `[{"ops":"put","prefix":"blob/"}]`, manyRules(MaxGrantScopes+1), 1),
		"prefix over limit":  strings.Replace(good, `"prefix":"blob/"`, `"prefix":"`+strings.Repeat("a", MaxKeySize+1)+`"`, 1),
		"clock over 64 bits": strings.Replace(good, `"not_before":100`, `"not_before":18446744073709551616`, 1),
	}
	for name, body := range bad {
		if _, err := ParseGrant([]byte(body)); !errors.Is(err, ErrBadGrant) {
			t.Errorf("%s: got %v, want ErrBadGrant", name, err)
		}
	}
	if _, err := ParseGrant([]byte(strings.Replace(good, `[{"ops":"put","prefix":"blob/"}]`, manyRules(MaxGrantScopes), 1))); err != nil {
		t.Errorf("%d rules: %v", MaxGrantScopes, err)
	}
}

func manyRules(n int) string {
	var rules []string
	for i := range n {
		rules = append(rules, `{"ops":"put","prefix":"p`+string(rune('a'+i/26))+string(rune('a'+i%26))+`/"}`)
	}
	return "[" + strings.Join(rules, ",") + "]"
}

func TestGrantMarshalRefusesInvalid(t *testing.T) {
	key := testGrantKey(t, 1)
	for name, g := range map[string]Grant{
		"no scope":      {Key: key},
		"grants prefix": {Key: key, Scope: []GrantRule{{Prefix: "grants/", Ops: OpPut}}},
		"no ops":        {Key: key, Scope: []GrantRule{{Prefix: "blob/"}}},
		"short key":     {Key: key[:31], Scope: []GrantRule{{Prefix: "blob/", Ops: OpPut}}},
		"prefix twice":  {Key: key, Scope: []GrantRule{{Prefix: "blob/", Ops: OpPut}, {Prefix: "blob/", Ops: OpDelete}}},
	} {
		if _, err := g.Marshal(); !errors.Is(err, ErrBadGrant) {
			t.Errorf("%s: got %v, want ErrBadGrant", name, err)
		}
	}
}

func TestGrantCovers(t *testing.T) {
	g := siteGrant(testGrantKey(t, 1), 100, 200)
	tests := []struct {
		key    string
		kind   Kind
		clock  hlc.Timestamp
		reason string // "" when covered; else a word of the refusal
	}{
		{"site/blog/current", KindPut, 100, ""},
		{"site/blog/current", KindDelete, 199, ""},
		{"blob/abc", KindPut, 150, ""},
		{"deploy/abc", KindPut, 150, ""},
		{"blob/abc", KindDelete, 150, "not granted"},
		{"deploy/abc", KindDelete, 150, "not granted"},
		{"site/docs/current", KindPut, 150, "no granted prefix"},
		{"site/current", KindPut, 150, "no granted prefix"},
		{"sites/blog", KindPut, 150, "no granted prefix"},
		{"grants/" + strings.Repeat("ab", 32), KindPut, 150, "masters only"},
		{"site/blog/current", KindPut, 99, "not_before"},
		{"site/blog/current", KindPut, 200, "not_after"},
		{"site/blog/current", KindPut, 1 << 60, "not_after"},
	}
	for _, tt := range tests {
		err := g.Covers(tt.key, tt.kind, tt.clock)
		switch {
		case tt.reason == "" && err != nil:
			t.Errorf("%s %s at %d: %v", tt.kind, tt.key, tt.clock, err)
		case tt.reason != "" && (!errors.Is(err, ErrOutsideGrant) || !strings.Contains(err.Error(), tt.reason)):
			t.Errorf("%s %s at %d: got %v, want ErrOutsideGrant naming %q", tt.kind, tt.key, tt.clock, err, tt.reason)
		}
	}
	open := siteGrant(testGrantKey(t, 1), 100, 0)
	if err := open.Covers("site/blog/x", KindPut, 1<<62); err != nil {
		t.Errorf("open window: %v", err)
	}
}

func TestGrantRevoked(t *testing.T) {
	g := siteGrant(testGrantKey(t, 1), 100, 0)
	r := g.Revoked(150)
	if r.NotAfter != 150 || r.NotBefore != 100 || len(r.Scope) != len(g.Scope) {
		t.Fatalf("revoked at 150: %+v", r)
	}
	if err := r.Covers("site/blog/a", KindPut, 149); err != nil {
		t.Errorf("before the revocation: %v", err)
	}
	if err := r.Covers("site/blog/a", KindPut, 150); !errors.Is(err, ErrOutsideGrant) {
		t.Errorf("at the revocation: %v", err)
	}
	if again := r.Revoked(180); again.NotAfter != 150 {
		t.Errorf("a later revocation reopened the window to %d", again.NotAfter)
	}
	if earlier := r.Revoked(120); earlier.NotAfter != 120 {
		t.Errorf("an earlier revocation: not_after %d", earlier.NotAfter)
	}
}

// FuzzParseGrant checks that ParseGrant never panics, accepts only bodies of at most
// MaxGrantSize, and that whatever it accepts marshals back to the same bytes.
func FuzzParseGrant(f *testing.F) {
	key := testGrantKey(f, 1)
	good, _ := siteGrant(key, 100, 200).Marshal()
	f.Add(good)
	f.Add([]byte(`{"key":"` + hex.EncodeToString(key) + `","not_after":0,"not_before":0,"scope":[{"ops":"delete","prefix":"a"}],"v":1}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"v":1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		g, err := ParseGrant(b)
		if err != nil {
			if !errors.Is(err, ErrBadGrant) {
				t.Fatalf("error not ErrBadGrant: %v", err)
			}
			return
		}
		if len(b) > MaxGrantSize {
			t.Fatalf("accepted %d bytes", len(b))
		}
		again, err := g.Marshal()
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("accepted %q, marshals to %q (%v)", b, again, err)
		}
	})
}
