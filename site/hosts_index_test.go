package site

import (
	"slices"
	"testing"
)

// TestHostsNamesAndLookup: Names lists every site sorted, the implicit default included once,
// and Lookup's index names the site Match returns.
func TestHostsNamesAndLookup(t *testing.T) {
	records := []Record{
		{V: 1, Name: "docs", Hosts: []string{"*.docs.example.com"}},
		{V: 1, Name: "blog", Hosts: []string{"blog.example.com"}},
	}
	for _, c := range []struct {
		records  []Record
		implicit bool
		names    []string
	}{
		{records, false, []string{"blog", "docs"}},
		{records, true, []string{"blog", DefaultSite, "docs"}},
		{nil, true, []string{DefaultSite}},
		{nil, false, nil},
	} {
		h := NewHosts(c.records, c.implicit)
		if !slices.Equal(h.Names(), c.names) {
			t.Errorf("Names() = %v, want %v", h.Names(), c.names)
		}
		for _, host := range []string{"blog.example.com", "a.docs.example.com", "other.example", "[::1]:80"} {
			name, ok := h.Match(host)
			i, iok := h.Lookup(host)
			if ok != iok || ok && h.Names()[i] != name {
				t.Errorf("host %s: Match %q %v, Lookup %d %v", host, name, ok, i, iok)
			}
		}
	}
}
