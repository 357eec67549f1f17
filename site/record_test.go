package site

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestRecordMarshalCanonical(t *testing.T) {
	r, err := NewRecord("blog", []string{"www.blog.example.com", "blog.example.com", "*.docs.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := r.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	want := `{"v":1,"name":"blog","hosts":["*.docs.example.com","blog.example.com","www.blog.example.com"]}`
	if string(b) != want {
		t.Fatalf("Marshal = %s, want %s", b, want)
	}
	// Any order of the hosts parses to the same record, which marshals to the same bytes.
	got, err := ParseRecord([]byte(`{"v":1,"name":"blog","hosts":["blog.example.com","www.blog.example.com","*.docs.example.com"]}`))
	if err != nil {
		t.Fatal(err)
	}
	if b2, _ := got.Marshal(); !bytes.Equal(b2, b) {
		t.Fatalf("re-marshalled %s, want %s", b2, b)
	}
	empty, err := NewRecord("docs", nil)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := empty.Marshal(); string(b) != `{"v":1,"name":"docs","hosts":[]}` {
		t.Fatalf("a site without hosts marshals as %s", b)
	}
}

func TestParseRecordRefuses(t *testing.T) {
	many := make([]string, MaxHosts+1)
	for i := range many {
		many[i] = `"h` + strings.Repeat("x", i%50) + `.example.com"`
	}
	for name, in := range map[string]string{
		"not json":       `{`,
		"unknown field":  `{"v":1,"name":"blog","hosts":[],"x":1}`,
		"trailing data":  `{"v":1,"name":"blog","hosts":[]} {}`,
		"version 2":      `{"v":2,"name":"blog","hosts":[]}`,
		"no version":     `{"name":"blog","hosts":[]}`,
		"no name":        `{"v":1,"hosts":[]}`,
		"upper name":     `{"v":1,"name":"Blog","hosts":[]}`,
		"double hyphen":  `{"v":1,"name":"a--b","hosts":[]}`,
		"leading hyphen": `{"v":1,"name":"-a","hosts":[]}`,
		"long name":      `{"v":1,"name":"` + strings.Repeat("a", MaxSiteName+1) + `","hosts":[]}`,
		"dup host":       `{"v":1,"name":"blog","hosts":["a.example","a.example"]}`,
		"port":           `{"v":1,"name":"blog","hosts":["a.example:443"]}`,
		"trailing dot":   `{"v":1,"name":"blog","hosts":["a.example."]}`,
		"upper host":     `{"v":1,"name":"blog","hosts":["A.example"]}`,
		"inner wildcard": `{"v":1,"name":"blog","hosts":["a.*.example"]}`,
		"bare wildcard":  `{"v":1,"name":"blog","hosts":["*"]}`,
		"empty label":    `{"v":1,"name":"blog","hosts":["a..example"]}`,
		"hyphen label":   `{"v":1,"name":"blog","hosts":["-a.example"]}`,
		"long label":     `{"v":1,"name":"blog","hosts":["` + strings.Repeat("a", 64) + `.example"]}`,
		"long host":      `{"v":1,"name":"blog","hosts":["` + strings.Repeat("abcdefg.", 32) + `com"]}`,
		"too many hosts": `{"v":1,"name":"blog","hosts":[` + strings.Join(many, ",") + `]}`,
		"too big":        `{"v":1,"name":"blog","hosts":[],"pad":"` + strings.Repeat(" ", MaxRecordBytes) + `"}`,
		"negative keep":  `{"v":1,"name":"blog","hosts":[],"settings":{"keep":-1}}`,
		"keep too large": `{"v":1,"name":"blog","hosts":[],"settings":{"keep":1001}}`,
		"spa not bool":   `{"v":1,"name":"blog","hosts":[],"settings":{"spa":"yes"}}`,
		"unknown option": `{"v":1,"name":"blog","hosts":[],"settings":{"trailing_slash":"add"}}`,
		"settings null":  `{"v":1,"name":"blog","hosts":[],"settings":[]}`,
	} {
		if r, err := ParseRecord([]byte(in)); !errors.Is(err, ErrInvalidRecord) {
			t.Errorf("%s: ParseRecord = %+v, %v; want ErrInvalidRecord", name, r, err)
		}
	}
}

// TestRecordSettings checks that settings are written only when one is set, so that a record
// without them keeps the bytes nodes of earlier releases read, and that they round-trip.
func TestRecordSettings(t *testing.T) {
	yes, no := true, false
	r, err := NewRecord("app", []string{"app.example"})
	if err != nil {
		t.Fatal(err)
	}
	for _, empty := range []*Settings{nil, {}} {
		r.Settings = empty
		if b, _ := r.Marshal(); string(b) != `{"v":1,"name":"app","hosts":["app.example"]}` {
			t.Fatalf("settings %v marshal as %s", empty, b)
		}
	}
	r.Settings = &Settings{SPA: &no, CleanURLs: &yes, Keep: 10}
	b, err := r.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	want := `{"v":1,"name":"app","hosts":["app.example"],"settings":{"clean_urls":true,"spa":false,"keep":10}}`
	if string(b) != want {
		t.Fatalf("Marshal = %s, want %s", b, want)
	}
	got, err := ParseRecord(b)
	if err != nil || got.Settings.String() != "clean-urls,no-spa,keep=10" {
		t.Fatalf("ParseRecord = %+v (%s), %v", got, got.Settings, err)
	}
	if got, err := ParseRecord([]byte(`{"v":1,"name":"app","hosts":[],"settings":{}}`)); err != nil || got.Settings != nil {
		t.Fatalf("empty settings parse as %+v, %v; want none", got.Settings, err)
	}
	for _, keep := range []int{-1, MaxKeep + 1} {
		r.Settings = &Settings{Keep: keep}
		if _, err := r.Marshal(); !errors.Is(err, ErrInvalidRecord) {
			t.Errorf("keep %d: Marshal = %v, want ErrInvalidRecord", keep, err)
		}
	}
	r.Settings = &Settings{Keep: MaxKeep}
	if _, err := r.Marshal(); err != nil {
		t.Errorf("keep %d: %v", MaxKeep, err)
	}
	merged := Settings{SPA: &yes, Keep: 3}.Merge(Settings{SPA: &no, CleanURLs: &yes})
	if merged.String() != "clean-urls,no-spa,keep=3" {
		t.Fatalf("Merge = %s", merged.String())
	}
	if (*Settings)(nil).String() != "-" {
		t.Fatal("no settings do not print as -")
	}
}

func TestParseRecordAt(t *testing.T) {
	b := []byte(`{"v":1,"name":"blog","hosts":["blog.example"]}`)
	if _, err := ParseRecordAt(RecordKey("blog"), b); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{RecordKey("docs"), "site/blog", "sites/Blog"} {
		if _, err := ParseRecordAt(key, b); !errors.Is(err, ErrInvalidRecord) {
			t.Errorf("ParseRecordAt(%q) = %v, want ErrInvalidRecord", key, err)
		}
	}
}

func TestSiteKeys(t *testing.T) {
	if k := CurrentKeyOf(DefaultSite); k != "site/current" {
		t.Fatalf("CurrentKeyOf(default) = %q, want the key of the previous release", k)
	}
	if k := CurrentKeyOf("blog"); k != "site/blog/current" {
		t.Fatalf("CurrentKeyOf(blog) = %q", k)
	}
	if k := RecordKey("blog"); k != "sites/blog" {
		t.Fatalf("RecordKey(blog) = %q", k)
	}
	for _, name := range []string{DefaultSite, "blog", "a", "x-1"} {
		if got, ok := ParseCurrentKey(CurrentKeyOf(name)); !ok || got != name {
			t.Errorf("ParseCurrentKey(CurrentKeyOf(%q)) = %q, %v", name, got, ok)
		}
		if got, ok := ParseRecordKey(RecordKey(name)); !ok || got != name {
			t.Errorf("ParseRecordKey(RecordKey(%q)) = %q, %v", name, got, ok)
		}
	}
	for _, k := range []string{"site/default/current", "site//current", "site/a--b/current", "site/Blog/current", "site/blog", "sites/blog", "site/a/b/current", "deploy/x"} {
		if name, ok := ParseCurrentKey(k); ok {
			t.Errorf("ParseCurrentKey(%q) = %q, want no site", k, name)
		}
	}
	for _, k := range []string{"sites/", "sites/a--b", "sites/a/b", "site/current", "sites/-a"} {
		if name, ok := ParseRecordKey(k); ok {
			t.Errorf("ParseRecordKey(%q) = %q, want no site", k, name)
		}
	}
}

// FuzzParseRecord checks that whatever ParseRecord accepts is valid, marshals, and parses
// back from its canonical bytes to the same record.
func FuzzParseRecord(f *testing.F) {
	f.Add([]byte(`{"v":1,"name":"blog","hosts":["blog.example.com","*.docs.example.com"]}`))
	f.Add([]byte(`{"v":1,"name":"default","hosts":[]}`))
	f.Add([]byte(`{"v":1,"name":"a","hosts":["a","a"]}`))
	f.Add([]byte(`{"v":1,"name":"app","hosts":["app.example"],"settings":{"clean_urls":true,"spa":false,"keep":10}}`))
	f.Add([]byte(`{"v":1,"name":"app","hosts":[],"settings":{}}`))
	f.Add([]byte(`{"v":1,"name":"app","hosts":[],"settings":{"keep":1001}}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		r, err := ParseRecord(in)
		if err != nil {
			if !errors.Is(err, ErrInvalidRecord) {
				t.Fatalf("error %v does not wrap ErrInvalidRecord", err)
			}
			return
		}
		if err := r.Validate(); err != nil {
			t.Fatalf("accepted an invalid record: %v", err)
		}
		b, err := r.Marshal()
		if err != nil {
			t.Fatalf("accepted a record that does not marshal: %v", err)
		}
		r2, err := ParseRecord(b)
		if err != nil {
			t.Fatalf("canonical bytes %s refused: %v", b, err)
		}
		if b2, _ := r2.Marshal(); !bytes.Equal(b, b2) {
			t.Fatalf("not stable: %s then %s", b, b2)
		}
		if r.Settings != nil && (r.Settings.IsZero() || r.Settings.Keep < 0 || r.Settings.Keep > MaxKeep) {
			t.Fatalf("settings %+v accepted", *r.Settings)
		}
		if len(r.Hosts) > MaxHosts || len(b) > MaxRecordBytes {
			t.Fatalf("over the limits: %d hosts, %d bytes", len(r.Hosts), len(b))
		}
	})
}
