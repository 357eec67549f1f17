package cli

import (
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/dt-cdn/dt/dt"
)

// explainRefusal adds the next step to the error of a write the network would not take from
// this key: refused by a peer with its reason (dt.ErrRefused), kept waiting for a grant by a peer
// (dt.ErrPending), or outside the key's grant as this node knows it (dt.ErrOutsideGrant). Each
// means the signing key lacks a grant that covers the write, which only a master can give. Any
// other error is returned as it is.
func explainRefusal(err error, keys dt.Keys, site string) error {
	var step string
	switch {
	case errors.Is(err, dt.ErrPending):
		step = "waiting for a grant"
	case errors.Is(err, dt.ErrRefused), errors.Is(err, dt.ErrOutsideGrant):
		step = "refused"
	default:
		return err
	}
	pub := signerOf(keys)
	if pub == nil {
		return err
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
