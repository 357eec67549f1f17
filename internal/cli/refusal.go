package cli

import (
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/dt-cdn/dt/dns/zone"
	"github.com/dt-cdn/dt/dt"
	"github.com/dt-cdn/dt/netconf"
	"github.com/dt-cdn/dt/site"
)

// masterOnlyWrite is a refused write under a prefix that no grant covers: site.PublisherScope
// never grants it, and dt refuses grants/ to every publisher. Only a master key may write it, so
// asking for a grant would not help.
type masterOnlyWrite struct {
	key     string // the refused record's key
	what    string // what the prefix holds, in words
	command string // the command that writes it, run with a keys directory holding master.key
}

// masterOnlyWrites are the prefixes of masterOnlyWrite, with what each holds and the command
// that writes it; the command's NAME is filled from the key where it names one.
func masterOnlyWrites() []masterOnlyWrite {
	return []masterOnlyWrite{
		{key: site.RecordKeyPrefix, what: "the site list", command: "dt site add NAME --host HOST (or dt site set, dt site remove)"},
		{key: dt.GrantKeyPrefix, what: "the grants", command: "dt grant --site SITE PUBKEY (or dt revoke PUBKEY)"},
		{key: zone.KeyPrefix, what: "the DNS zones", command: "dt dns-publish ZONEFILE"},
		{key: netconf.Key[:strings.IndexByte(netconf.Key, '/')+1], what: "the network's settings", command: "dt network set --cdn-zone ZONE"},
	}
}

// masterOnlyOf finds the key of the record err refused and reports whether it lies under a
// master-only prefix. A peer's verdict carries the key (dt.VerdictError); the node's own check
// names it in its message ("dt: put sites/blog: ..."), which is searched for those prefixes.
func masterOnlyOf(err error) (masterOnlyWrite, bool) {
	var keys []string
	if ve, ok := errors.AsType[*dt.VerdictError](err); ok {
		keys = []string{ve.Key}
	} else {
		for _, f := range strings.Fields(err.Error()) {
			keys = append(keys, strings.Trim(f, "\":,"))
		}
	}
	for _, key := range keys {
		for _, mo := range masterOnlyWrites() {
			if rest, ok := strings.CutPrefix(key, mo.key); ok {
				mo.key = key
				if name := strings.TrimSuffix(rest, "/"); name != "" && !strings.Contains(name, "/") {
					mo.command = strings.Replace(mo.command, "NAME", name, 1)
				}
				return mo, true
			}
		}
	}
	return masterOnlyWrite{}, false
}

// explain says that only a master may write the key, and what to run on a master instead.
func (mo masterOnlyWrite) explain(step string) string {
	return fmt.Sprintf("%s: %s is in %s, which only a master key (one in every node's master.pub) may write: no grant covers it; "+
		"on a machine with master.key, run: %s", step, mo.key, mo.what, mo.command)
}

// explainMasterOnly adds to the error of a refused write under a master-only prefix that only a
// master may write it; other errors are returned as they are. Commands that need master.key use
// it: a refusal there comes from peers that do not trust the key as a master.
func explainMasterOnly(err error) error {
	step, ok := refusalStep(err)
	if !ok {
		return err
	}
	if mo, ok := masterOnlyOf(err); ok {
		return fmt.Errorf("%w\n%s", err, mo.explain(step))
	}
	return err
}

// refusalStep says whether err is a write the network would not take from this key, and how:
// kept waiting for a grant by a peer (dt.ErrPending), refused by a peer (dt.ErrRefused), or
// outside the key's grant as this node knows it (dt.ErrOutsideGrant).
func refusalStep(err error) (string, bool) {
	switch {
	case errors.Is(err, dt.ErrPending):
		return "waiting for a grant", true
	case errors.Is(err, dt.ErrRefused), errors.Is(err, dt.ErrOutsideGrant):
		return "refused", true
	}
	return "", false
}

// explainRefusal adds the next step to the error of a write the network would not take from
// this key: refused by a peer with its reason (dt.ErrRefused), kept waiting for a grant by a peer
// (dt.ErrPending), or outside the key's grant as this node knows it (dt.ErrOutsideGrant). Each
// means the signing key lacks a grant that covers the write, which only a master can give. Any
// other error is returned as it is. A write under a master-only prefix (masterOnlyWrites) is
// explained as a master's alone instead.
func explainRefusal(err error, keys dt.Keys, site string) error {
	step, ok := refusalStep(err)
	if !ok {
		return err
	}
	pub := signerOf(keys)
	if pub == nil {
		return err
	}
	if mo, ok := masterOnlyOf(err); ok {
		return fmt.Errorf("%w\n%s", err, mo.explain(step))
	}
	if site == "" {
		site = "NAME"
	}
	return fmt.Errorf("%w\n%s: ask the master to run: dt grant --site %s %s", err, step, site, hex.EncodeToString(pub))
}

// signerOf returns the public key this keys directory signs with: the master key, else the
// publisher key; nil when it has neither.
func signerOf(keys dt.Keys) ed25519.PublicKey {
	switch {
	case keys.Master != nil:
		return keys.Master.Public().(ed25519.PublicKey)
	case keys.Publisher != nil:
		return keys.Publisher.Public().(ed25519.PublicKey)
	}
	return nil
}
