package dt

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/dt-cdn/dt/dt/internal/hlc"
)

// GrantKeyPrefix is the table key prefix of grants: GrantKeyPrefix + hex(public key).
//
// A grant is how a trusted master delegates part of the table to another Ed25519 key, as TUF's
// delegated roles do. It is a record like any other, written by a master under GrantKey(the
// grantee's public key), so it replicates, wins by the table's usual rule (the newest clock) and
// is removed by a delete. Its body is the grant's canonical JSON: object keys sorted, no white
// space, the scope sorted by prefix, as in
//
//	{"key":"<64 hex>","not_after":0,"not_before":<hlc>,"scope":[{"ops":"put","prefix":"blob/"},{"ops":"put,delete","prefix":"site/blog/"}],"v":1}
//
// The fields:
//
//   - v: GrantVersion.
//   - key: the grantee's Ed25519 public key, 64 lower-case hex digits; it must be the one the
//     table key names.
//   - scope: 1 to MaxGrantScopes rules, sorted by prefix, no prefix twice. A rule lets the key
//     write records whose table key starts with prefix (a plain byte prefix: "site/blog/" covers
//     "site/blog/current", "site/b" would cover "site/blog2/" too). ops is "put", "delete" or
//     "put,delete", in that order. A prefix is not empty, at most MaxKeySize bytes, and neither
//     a prefix of GrantKeyPrefix nor under it: grants are a master's alone.
//   - not_before, not_after: the window [not_before, not_after) of record clocks (hybrid logical
//     clock values, as Record.Clock) the grant covers; not_after 0 leaves it open. A revocation
//     is a new grant record for the same key with not_after set to the revocation's clock, so a
//     record stamped before the revocation stays valid on every node, and one stamped at or after
//     it is invalid on every node, whichever each node saw first. A window with not_after at or
//     below not_before covers nothing.
//
// Any other form (unknown or missing fields, white space, another key order, numbers that are
// not plain non-negative integers, duplicate JSON keys) is refused by ParseGrant, so one grant
// has one encoding and every node reads it alike.
const GrantKeyPrefix = "grants/"

// GrantVersion is the "v" of the grant format ParseGrant reads.
const GrantVersion = 1

// Limits on grants, checked on every grant body from the network.
const (
	// MaxGrantScopes bounds the rules of one grant: a site's scope needs three, and checking a
	// record walks them all.
	MaxGrantScopes = 32
	// MaxGrantSize bounds a grant body: MaxGrantScopes rules of prefixes up to 256 bytes fit with
	// room to spare, and nothing larger is parsed.
	MaxGrantSize = 16 << 10
)

// Ops is a set of record kinds a grant rule allows.
type Ops uint8

// The operations of a grant rule.
const (
	OpPut    Ops = 1 << iota // records of KindPut
	OpDelete                 // records of KindDelete
)

// String returns the canonical form: "put", "delete" or "put,delete" ("" for none).
func (o Ops) String() string {
	var parts []string
	if o&OpPut != 0 {
		parts = append(parts, "put")
	}
	if o&OpDelete != 0 {
		parts = append(parts, "delete")
	}
	return strings.Join(parts, ",")
}

// parseOps reads the canonical form String writes and nothing else.
func parseOps(s string) (Ops, bool) {
	switch s {
	case "put":
		return OpPut, true
	case "delete":
		return OpDelete, true
	case "put,delete":
		return OpPut | OpDelete, true
	}
	return 0, false
}

// opOf returns the operation a record of kind k needs.
func opOf(k Kind) Ops {
	switch k {
	case KindPut:
		return OpPut
	case KindDelete:
		return OpDelete
	}
	return 0
}

// GrantRule lets a grant's key write records under Prefix with the operations Ops.
type GrantRule struct {
	Prefix string
	Ops    Ops
}

// Grant is a master's delegation of part of the table to another key. Marshal and ParseGrant
// convert it to and from the one form the table holds (see GrantKeyPrefix).
type Grant struct {
	// Key is the grantee's public key.
	Key ed25519.PublicKey
	// Scope is what the key may write; Marshal sorts it by prefix.
	Scope []GrantRule
	// NotBefore is the first record clock the grant covers.
	NotBefore hlc.Timestamp
	// NotAfter is the first record clock the grant no longer covers; zero leaves it open.
	NotAfter hlc.Timestamp
}

// GrantKey returns the table key of the grant for pub: GrantKeyPrefix + lower-case hex.
func GrantKey(pub ed25519.PublicKey) string { return GrantKeyPrefix + hex.EncodeToString(pub) }

// grantJSON is the wire form of a Grant; its fields are in the sorted order of their names.
type grantJSON struct {
	Key       string          `json:"key"`
	NotAfter  uint64          `json:"not_after"`
	NotBefore uint64          `json:"not_before"`
	Scope     []grantRuleJSON `json:"scope"`
	V         int             `json:"v"`
}

type grantRuleJSON struct {
	Ops    string `json:"ops"`
	Prefix string `json:"prefix"`
}

// Marshal returns the grant's canonical JSON. It refuses a grant ParseGrant would refuse.
func (g Grant) Marshal() ([]byte, error) {
	scope := slices.Clone(g.Scope)
	slices.SortFunc(scope, func(a, b GrantRule) int { return strings.Compare(a.Prefix, b.Prefix) })
	w := grantJSON{Key: hex.EncodeToString(g.Key), NotAfter: uint64(g.NotAfter), NotBefore: uint64(g.NotBefore), V: GrantVersion}
	for _, r := range scope {
		w.Scope = append(w.Scope, grantRuleJSON{Ops: r.Ops.String(), Prefix: r.Prefix})
	}
	b, err := encodeGrant(w)
	if err != nil {
		return nil, err
	}
	if _, err := checkGrant(w); err != nil {
		return nil, err
	}
	return b, nil
}

// encodeGrant writes the wire form with encoding/json, without HTML escaping, so that "<", ">"
// and "&" in a prefix read back as they are.
func encodeGrant(w grantJSON) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(w); err != nil {
		return nil, fmt.Errorf("%w: encode: %w", ErrBadGrant, err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// ParseGrant decodes a grant body from untrusted bytes and checks it. It refuses with
// ErrBadGrant anything but the canonical form of a valid grant. It does not check that the
// table key names the grant's key (CheckGrantRecord does).
func ParseGrant(b []byte) (Grant, error) {
	if len(b) > MaxGrantSize {
		return Grant{}, fmt.Errorf("%w: %d bytes, limit %d", ErrBadGrant, len(b), MaxGrantSize)
	}
	var w grantJSON
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return Grant{}, fmt.Errorf("%w: %w", ErrBadGrant, err)
	}
	g, err := checkGrant(w)
	if err != nil {
		return Grant{}, err
	}
	// Comparing with the re-encoding refuses white space, another key order, duplicate or
	// missing keys and escapes written differently: whatever encoding/json accepted loosely.
	canon, err := encodeGrant(w)
	if err != nil {
		return Grant{}, err
	}
	if !bytes.Equal(canon, b) {
		return Grant{}, fmt.Errorf("%w: not in canonical form", ErrBadGrant)
	}
	return g, nil
}

// checkGrant validates the decoded wire form field by field and returns the grant.
func checkGrant(w grantJSON) (Grant, error) {
	if w.V != GrantVersion {
		return Grant{}, fmt.Errorf("%w: version %d", ErrBadGrant, w.V)
	}
	key, err := hex.DecodeString(w.Key)
	if err != nil || len(key) != ed25519.PublicKeySize || w.Key != strings.ToLower(w.Key) {
		return Grant{}, fmt.Errorf("%w: key is not %d lower-case hex digits", ErrBadGrant, 2*ed25519.PublicKeySize)
	}
	if len(w.Scope) == 0 || len(w.Scope) > MaxGrantScopes {
		return Grant{}, fmt.Errorf("%w: %d scope rules, want 1 to %d", ErrBadGrant, len(w.Scope), MaxGrantScopes)
	}
	g := Grant{Key: ed25519.PublicKey(key), NotBefore: hlc.Timestamp(w.NotBefore), NotAfter: hlc.Timestamp(w.NotAfter)}
	for i, r := range w.Scope {
		if err := checkGrantPrefix(r.Prefix); err != nil {
			return Grant{}, err
		}
		if i > 0 && r.Prefix <= w.Scope[i-1].Prefix {
			return Grant{}, fmt.Errorf("%w: scope not sorted by prefix, or a prefix twice (%q)", ErrBadGrant, truncateKey(r.Prefix))
		}
		ops, ok := parseOps(r.Ops)
		if !ok {
			return Grant{}, fmt.Errorf("%w: ops %q: want put, delete or put,delete", ErrBadGrant, truncateKey(r.Ops))
		}
		g.Scope = append(g.Scope, GrantRule{Prefix: r.Prefix, Ops: ops})
	}
	return g, nil
}

// checkGrantPrefix refuses prefixes that would reach the grants themselves: a grantee must never
// be able to write a grant, or it could widen its own.
func checkGrantPrefix(p string) error {
	switch {
	case p == "":
		return fmt.Errorf("%w: empty prefix (the whole table is a master's)", ErrBadGrant)
	case len(p) > MaxKeySize:
		return fmt.Errorf("%w: prefix of %d bytes, limit %d", ErrBadGrant, len(p), MaxKeySize)
	case strings.HasPrefix(GrantKeyPrefix, p) || strings.HasPrefix(p, GrantKeyPrefix):
		return fmt.Errorf("%w: prefix %q reaches %s", ErrBadGrant, truncateKey(p), GrantKeyPrefix)
	}
	return nil
}

// truncateKey shortens untrusted text quoted in an error.
func truncateKey(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// Covers reports whether the grant lets its key write a record of kind k under key, stamped at
// clock; when it does not, the error wraps ErrOutsideGrant and names the rule that refused it.
// It does not check the record's signature or that the grant itself came from a master.
func (g Grant) Covers(key string, k Kind, clock hlc.Timestamp) error {
	if strings.HasPrefix(key, GrantKeyPrefix) {
		return fmt.Errorf("%w: %s is written by masters only", ErrOutsideGrant, GrantKeyPrefix)
	}
	if clock < g.NotBefore {
		return fmt.Errorf("%w: record clock %d is before the grant's not_before %d", ErrOutsideGrant, clock, g.NotBefore)
	}
	if g.NotAfter != 0 && clock >= g.NotAfter {
		return fmt.Errorf("%w: record clock %d is at or after the grant's not_after %d (revoked or expired)", ErrOutsideGrant, clock, g.NotAfter)
	}
	if len(g.Scope) == 0 {
		return fmt.Errorf("%w: the signer's grant was deleted or is malformed: it grants nothing", ErrOutsideGrant)
	}
	need := opOf(k)
	matched := false
	for _, r := range g.Scope {
		if !strings.HasPrefix(key, r.Prefix) {
			continue
		}
		if r.Ops&need != 0 {
			return nil
		}
		matched = true
	}
	if matched {
		return fmt.Errorf("%w: %s of %q is not granted (its prefixes allow other operations)", ErrOutsideGrant, k, truncateKey(key))
	}
	return fmt.Errorf("%w: %q is under no granted prefix", ErrOutsideGrant, truncateKey(key))
}

// Revoked returns the grant with its window closed at clock: the body of a revocation. A window
// already closed earlier stays as it is, so a revocation never reopens anything.
func (g Grant) Revoked(clock hlc.Timestamp) Grant {
	if g.NotAfter == 0 || clock < g.NotAfter {
		g.NotAfter = clock
	}
	return g
}

// CheckGrantRecord validates a put under GrantKeyPrefix: the body must be a grant whose key is
// the one the table key names. It returns the grant.
func CheckGrantRecord(tableKey string, body []byte) (Grant, error) {
	g, err := ParseGrant(body)
	if err != nil {
		return Grant{}, err
	}
	if tableKey != GrantKey(g.Key) {
		return Grant{}, fmt.Errorf("%w: grant for %x stored under %q", ErrBadGrant, g.Key[:6], truncateKey(tableKey))
	}
	return g, nil
}
