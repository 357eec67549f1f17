package issuer

import (
	"errors"
	"testing"

	"github.com/dt-cdn/dt/challenge"
	"github.com/dt-cdn/dt/dt"
	"github.com/dt-cdn/dt/netcert"
)

func TestScope(t *testing.T) {
	g := dt.Grant{Key: make([]byte, 32), Scope: Scope()}
	if _, err := g.Marshal(); err != nil {
		t.Fatalf("the scope is not a valid grant: %v", err)
	}
	for _, key := range []string{netcert.Key("*.cdn.example.com"), challenge.DNS01Key("cdn.example.com"),
		challenge.HTTP01Key("tok"), LeaseKey, AccountKey, StatusKey} {
		for _, kind := range []dt.Kind{dt.KindPut, dt.KindDelete} {
			if err := g.Covers(key, kind, 1); err != nil {
				t.Errorf("%v %s: %v", kind, key, err)
			}
		}
	}
	for _, key := range []string{"site/current", "sites/blog", "site/blog/current", "blob/ab", "deploy/ab",
		"grants/x", "dns/example.com", "network/settings", "certs", "acme"} {
		if err := g.Covers(key, dt.KindPut, 1); !errors.Is(err, dt.ErrOutsideGrant) {
			t.Errorf("the issuer may put %s: %v", key, err)
		}
	}
}
