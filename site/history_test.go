package site

import (
	"errors"
	"strings"
	"testing"
)

func TestHistory(t *testing.T) {
	a, b, c := DeployIDOf([]byte("a")), DeployIDOf([]byte("b")), DeployIDOf([]byte("c"))
	h := History{V: RecordVersion}.Push(a, nil).Push(b, func(DeployID) bool { return true }).Push(c, func(id DeployID) bool { return id != a })
	if len(h.Deploys) != 2 || h.Deploys[0] != c || h.Deploys[1] != b {
		t.Fatalf("Push: %v", h.Deploys)
	}
	// Pushing the newest again moves nothing and lists it once.
	if again := h.Push(c, func(DeployID) bool { return true }); len(again.Deploys) != 2 || again.Deploys[0] != c {
		t.Fatalf("Push of the first deploy again: %v", again.Deploys)
	}
	body, err := h.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"v":1,"deploys":["` + c.String() + `","` + b.String() + `"]}`; string(body) != want {
		t.Fatalf("Marshal = %s", body)
	}
	back, err := ParseHistory(body)
	if err != nil || len(back.Deploys) != 2 || back.Deploys[0] != c {
		t.Fatalf("ParseHistory = %v, %v", back, err)
	}
	full := History{V: RecordVersion}
	for i := range MaxHistory + 5 {
		full = full.Push(DeployIDOf([]byte{byte(i), byte(i >> 8)}), func(DeployID) bool { return true })
	}
	if len(full.Deploys) != MaxHistory {
		t.Fatalf("Push kept %d deploys, want MaxHistory", len(full.Deploys))
	}
	if body, err := full.Marshal(); err != nil || len(body) > maxHistoryBytes {
		t.Fatalf("a full History: %d bytes, %v", len(body), err)
	} else if _, err := ParseHistory(body); err != nil {
		t.Fatalf("a full History does not parse: %v", err)
	}
	for name, in := range map[string]string{
		"unknown field": `{"v":1,"deploys":[],"x":1}`,
		"version":       `{"v":2,"deploys":[]}`,
		"twice":         `{"v":1,"deploys":["` + a.String() + `","` + a.String() + `"]}`,
		"zero":          `{"v":1,"deploys":["` + DeployID{}.String() + `"]}`,
		"not an id":     `{"v":1,"deploys":["abc"]}`,
		"too many":      `{"v":1,"deploys":[` + strings.Repeat(`"`+a.String()+`",`, MaxHistory) + `"` + b.String() + `"]}`,
	} {
		if _, err := ParseHistory([]byte(in)); !errors.Is(err, ErrInvalidHistory) {
			t.Errorf("%s: ParseHistory = %v, want ErrInvalidHistory", name, err)
		}
	}
	if k := HistoryKey("blog"); k != "site/blog/deploys" {
		t.Fatalf("HistoryKey = %q", k)
	}
	if HistoryKey(DefaultSite) != "" {
		t.Fatal("the default site has a History key")
	}
	if name, ok := ParseHistoryKey(HistoryKey("blog")); !ok || name != "blog" {
		t.Fatalf("ParseHistoryKey = %q, %v", name, ok)
	}
	for _, k := range []string{"site/default/deploys", "site/current", "site/blog/current", "site/a--b/deploys", "sites/blog"} {
		if _, ok := ParseHistoryKey(k); ok {
			t.Errorf("ParseHistoryKey(%q) accepted", k)
		}
		if _, ok := ParseCurrentKey(k); ok && strings.HasSuffix(k, "/deploys") {
			t.Errorf("ParseCurrentKey(%q) accepted a History key", k)
		}
	}
}

// FuzzParseHistory checks that whatever ParseHistory accepts is within its limits and marshals
// back to bytes that parse to the same deploys.
func FuzzParseHistory(f *testing.F) {
	f.Add([]byte(`{"v":1,"deploys":[]}`))
	f.Add([]byte(`{"v":1,"deploys":["` + DeployIDOf([]byte("a")).String() + `"]}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		h, err := ParseHistory(in)
		if err != nil {
			if !errors.Is(err, ErrInvalidHistory) {
				t.Fatalf("error %v does not wrap ErrInvalidHistory", err)
			}
			return
		}
		if len(h.Deploys) > MaxHistory {
			t.Fatalf("%d deploys accepted", len(h.Deploys))
		}
		b, err := h.Marshal()
		if err != nil {
			t.Fatalf("accepted a History that does not marshal: %v", err)
		}
		back, err := ParseHistory(b)
		if err != nil || len(back.Deploys) != len(h.Deploys) {
			t.Fatalf("round trip: %v, %v", back, err)
		}
		for i := range h.Deploys {
			if back.Deploys[i] != h.Deploys[i] {
				t.Fatalf("round trip changed deploy %d", i)
			}
		}
	})
}
