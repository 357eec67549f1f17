package blobs

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// FIPS 180-2 appendix B.1 ("abc") and the SHA-256 of the empty string.
const (
	abcHash   = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
	emptyHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
)

func TestSumKnownAnswers(t *testing.T) {
	if got := Sum([]byte("abc")).String(); got != abcHash {
		t.Errorf("Sum(abc) = %s, want %s", got, abcHash)
	}
	if got := Sum(nil).String(); got != emptyHash {
		t.Errorf("Sum(nil) = %s, want %s", got, emptyHash)
	}
}

var parseHashTests = []struct {
	in string
	ok bool
}{
	{abcHash, true},
	{emptyHash, true},
	{strings.Repeat("0", 64), true},
	{strings.Repeat("f", 64), true},
	{"", false},
	{abcHash[:63], false},
	{abcHash + "0", false},
	{strings.ToUpper(abcHash), false},                     // one name per blob: lowercase only
	{"B" + abcHash[1:], false},                            // a single uppercase digit
	{"sha256:" + abcHash[:57], false},                     // prefix, right length
	{"g" + abcHash[1:], false},                            // not hex
	{" " + abcHash[1:], false},                            // space
	{abcHash[:62] + "\x00a", false},                       // NUL
	{abcHash[:62] + "é", false},                           // multi-byte rune, 64 bytes
	{"0x" + abcHash[2:], false},                           // hex prefix
	{strings.Repeat("a", 128), false},                     // 64 bytes is the only length
	{abcHash[:32], false},                                 // half
	{"../../etc/passwd" + strings.Repeat("a", 48), false}, // path characters
}

func TestParseHash(t *testing.T) {
	for _, tt := range parseHashTests {
		h, err := ParseHash(tt.in)
		if tt.ok {
			if err != nil {
				t.Errorf("ParseHash(%q): %v", tt.in, err)
				continue
			}
			if h.String() != tt.in {
				t.Errorf("ParseHash(%q).String() = %q", tt.in, h.String())
			}
			continue
		}
		if !errors.Is(err, ErrInvalidHash) {
			t.Errorf("ParseHash(%q) = %v, %v; want ErrInvalidHash", tt.in, h, err)
		}
		if h != (Hash{}) {
			t.Errorf("ParseHash(%q) returned non-zero hash %v with an error", tt.in, h)
		}
	}
}

func TestHashText(t *testing.T) {
	type doc struct {
		H Hash `json:"h"`
	}
	want := Sum([]byte("abc"))
	b, err := json.Marshal(doc{want})
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `{"h":"`+abcHash+`"}` {
		t.Errorf("Marshal = %s", b)
	}
	var got doc
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if got.H != want {
		t.Errorf("round trip = %v, want %v", got.H, want)
	}
	bad := `{"h":"` + strings.ToUpper(abcHash) + `"}`
	if err := json.Unmarshal([]byte(bad), &got); !errors.Is(err, ErrInvalidHash) {
		t.Errorf("Unmarshal(uppercase) = %v, want ErrInvalidHash", err)
	}
}

func TestHashShortForms(t *testing.T) {
	h := Sum([]byte("abc"))
	if got := h.LogValue().String(); got != abcHash[:12] {
		t.Errorf("LogValue = %q, want %q", got, abcHash[:12])
	}
	if h.Short() != abcHash[:12] {
		t.Errorf("Short = %q", h.Short())
	}
	if h.IsZero() || !(Hash{}).IsZero() {
		t.Error("IsZero is wrong")
	}
}

// FuzzParseHash checks ParseHash against a reference (hex.DecodeString plus a lowercase check)
// and that whatever it accepts round-trips through String and the text encoding.
func FuzzParseHash(f *testing.F) {
	for _, tt := range parseHashTests {
		f.Add(tt.in)
	}
	f.Fuzz(func(t *testing.T, s string) {
		h, err := ParseHash(s)
		ref, refErr := hex.DecodeString(s)
		refOK := refErr == nil && len(ref) == len(h) && s == strings.ToLower(s)
		if (err == nil) != refOK {
			t.Fatalf("ParseHash(%q) error = %v, reference accepts = %v", s, err, refOK)
		}
		if err != nil {
			if !errors.Is(err, ErrInvalidHash) {
				t.Fatalf("ParseHash(%q) = %v, want ErrInvalidHash", s, err)
			}
			// Any input's hash round-trips too.
			h = Sum([]byte(s))
		} else if h.String() != s || string(ref) != string(h[:]) {
			t.Fatalf("ParseHash(%q) = %s", s, h)
		}
		text, _ := h.MarshalText()
		var back Hash
		if err := back.UnmarshalText(text); err != nil || back != h {
			t.Fatalf("text round trip of %s = %s, %v", h, back, err)
		}
	})
}
