package site

import "github.com/dt-cdn/dt/dt"

// PublisherScope returns what the publisher key of the site name may write, for a grant
// (dt grant --site): the site's own keys under "site/<name>/" (its current pointer and its
// History), put and delete; blobs and manifests, put only, since they are content-addressed (a
// put cannot change what another site serves) and only a master collects them. DefaultSite also
// gets CurrentKey, its pointer. Nothing under RecordKeyPrefix (the site list), grants or DNS
// zones.
func PublisherScope(name string) []dt.GrantRule {
	scope := []dt.GrantRule{
		{Prefix: blobKeyPrefix, Ops: dt.OpPut},
		{Prefix: deployKeyPrefix, Ops: dt.OpPut},
		{Prefix: currentKeyPrefix + name + "/", Ops: dt.OpPut | dt.OpDelete},
	}
	if name == DefaultSite {
		scope = append(scope, dt.GrantRule{Prefix: CurrentKey, Ops: dt.OpPut | dt.OpDelete})
	}
	return scope
}
