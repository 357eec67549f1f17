package issuer

import (
	"github.com/dt-cdn/dt/challenge"
	"github.com/dt-cdn/dt/dt"
	"github.com/dt-cdn/dt/netcert"
)

// KeyPrefix is the prefix of the issuer's own records: the lease (LeaseKey), the sealed ACME
// account (AccountKey) and the status (StatusKey).
const KeyPrefix = "issuer/"

// Scope is what a key granted the certificate scope may write, put and delete: certificate
// records (netcert.KeyPrefix), ACME challenge answers (challenge.KeyPrefix) and the issuer's own
// records (KeyPrefix). Nothing else: not sites, deploys, DNS zones, settings or grants.
func Scope() []dt.GrantRule {
	return []dt.GrantRule{
		{Prefix: challenge.KeyPrefix, Ops: dt.OpPut | dt.OpDelete},
		{Prefix: netcert.KeyPrefix, Ops: dt.OpPut | dt.OpDelete},
		{Prefix: KeyPrefix, Ops: dt.OpPut | dt.OpDelete},
	}
}
