package issuer

// Table keys of the issuer's own records, all under KeyPrefix.
const (
	// LeaseKey holds the lease: which issuer acts, until when (see Lease).
	LeaseKey = KeyPrefix + "lease"
	// AccountKey holds the ACME account, its key sealed, so a successor uses the same account.
	AccountKey = KeyPrefix + "account"
	// StatusKey holds the state of every certificate the issuer manages (see Status).
	StatusKey = KeyPrefix + "status"
)
