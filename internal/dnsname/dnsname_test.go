package dnsname

import (
	"strings"
	"testing"
)

func TestIsLabel(t *testing.T) {
	for l, want := range map[string]bool{
		"a": true, "cdn": true, "xn--bcher-kva": true, "0day": true, strings.Repeat("a", MaxLabel): true,
		"": false, "-a": false, "a-": false, "A": false, "a_b": false, "a.b": false, "*": false,
		strings.Repeat("a", MaxLabel+1): false,
	} {
		if IsLabel(l) != want {
			t.Errorf("IsLabel(%q) = %v, want %v", l, !want, want)
		}
	}
}
