package cli

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/dt-cdn/dt/dt"
	"github.com/dt-cdn/dt/issuer"
	"github.com/dt-cdn/dt/site"
)

// Publish keys scoped to a site: dt grant, dt grants and dt revoke, through a transient node.

// parsePublisherKey reads a public key given as 64 hex digits, as publisher.pub holds it.
func parsePublisherKey(s string) (ed25519.PublicKey, error) {
	b, err := hex.DecodeString(strings.TrimSpace(s))
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("publisher key %q: want %d hex digits (the contents of %s)", s, 2*ed25519.PublicKeySize, dt.PublisherPubKeyFile)
	}
	return ed25519.PublicKey(b), nil
}

func runGrant(ctx context.Context, args []string, env *Env) error {
	var f clientFlags
	var name string
	var certificates bool
	fs := newFlagSet(env, "grant", "dt grant --keys DIR --peer ADDR (--site NAME | --certificates) PUBKEY",
		"Lets the publisher key PUBKEY (the 64 hex digits of its publisher.pub, from dt keygen\n"+
			"--publisher) publish, roll back and lock the site NAME and nothing else: put and delete\n"+
			"under site/NAME/, put under blob/ and deploy/ (content-addressed, shared by every site);\n"+
			"for the site default also site/current. Never the site list, DNS zones or grants.\n"+
			"With --certificates it lets the issuer key PUBKEY (issuer.pub, from dt keygen --issuer)\n"+
			"obtain the network's certificates: put and delete under certs/, acme/ and issuer/, and\n"+
			"nothing else.\n"+
			"It replaces any grant the key had. Every node checks every record against it.\n"+
			"Upgrade every node before granting keys: nodes of earlier releases trust masters only.\n"+
			"Needs master.key in the keys directory.")
	fs.StringVar(&name, "site", "", "the `NAME` of the site the key may publish")
	fs.BoolVar(&certificates, "certificates", false, "grant the certificate scope (certs/, acme/, issuer/) to an issuer key instead")
	f.register(fs)
	if err := f.parse(fs, args, 1, "PUBKEY"); err != nil {
		return err
	}
	scope, err := grantScope(fs, name, certificates)
	if err != nil {
		return err
	}
	key, err := parsePublisherKey(fs.Arg(0))
	if err != nil {
		return fs.usageErrorf("%v", err)
	}
	return withMaster(ctx, env, &f, func(ctx context.Context, t *transient) error {
		g, err := t.n.Grant(ctx, key, scope)
		if err != nil {
			return err
		}
		if err := t.n.WaitReplicated(ctx, dt.GrantKey(key), 1); err != nil {
			return fmt.Errorf("grant written but not confirmed by a peer: %w", err)
		}
		fmt.Fprintln(env.Stdout, grantLine(g))
		return nil
	})
}

// grantScope is the scope dt grant's flags name: one site's, or the certificate issuer's.
func grantScope(fs *flagSet, name string, certificates bool) ([]dt.GrantRule, error) {
	switch {
	case certificates && name != "":
		return nil, fs.usageErrorf("--site and --certificates exclude each other")
	case certificates:
		return issuer.Scope(), nil
	case name == "":
		return nil, fs.usageErrorf("--site: %v", site.CheckSiteName(name))
	}
	if err := site.CheckSiteName(name); err != nil {
		return nil, fs.usageErrorf("--site: %v", err)
	}
	return site.PublisherScope(name), nil
}

func runRevoke(ctx context.Context, args []string, env *Env) error {
	var f clientFlags
	fs := newFlagSet(env, "revoke", "dt revoke --keys DIR --peer ADDR PUBKEY",
		"Revokes the grant of the publisher key PUBKEY from now on: what it published before stays,\n"+
			"and every node refuses what it signs from now on, whatever order the revocation and its\n"+
			"records reach each node in. Needs master.key in the keys directory.")
	f.register(fs)
	if err := f.parse(fs, args, 1, "PUBKEY"); err != nil {
		return err
	}
	key, err := parsePublisherKey(fs.Arg(0))
	if err != nil {
		return fs.usageErrorf("%v", err)
	}
	return withMaster(ctx, env, &f, func(ctx context.Context, t *transient) error {
		g, err := t.n.Revoke(ctx, key)
		if err != nil {
			return err
		}
		if err := t.n.WaitReplicated(ctx, dt.GrantKey(key), 1); err != nil {
			return fmt.Errorf("revocation written but not confirmed by a peer: %w", err)
		}
		fmt.Fprintln(env.Stdout, grantLine(g))
		return nil
	})
}

// withMaster runs fn on a transient master node, and explains a wait that ran out.
func withMaster(ctx context.Context, env *Env, f *clientFlags, fn func(context.Context, *transient) error) error {
	keys, err := dt.LoadKeys(f.keys)
	if err != nil {
		return err
	}
	if keys.Master == nil {
		return fmt.Errorf("%w: grants are a master's: %s has no %s", ErrNoMasterKey, f.keys, dt.MasterKeyFile)
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	t, ctx, err := openTransient(ctx, env, f, true)
	if err != nil {
		return err
	}
	defer t.close()
	if err := fn(ctx, t); err != nil {
		return t.explain(ctx, err)
	}
	return t.close()
}

// grantJSON is a grant as dt grants --json prints it.
type grantJSON struct {
	Key       string          `json:"key"`
	Scope     []grantRuleJSON `json:"scope"`
	NotBefore uint64          `json:"not_before"`
	NotAfter  uint64          `json:"not_after"`
}

type grantRuleJSON struct {
	Prefix string `json:"prefix"`
	Ops    string `json:"ops"`
}

func grantOut(g dt.Grant) grantJSON {
	out := grantJSON{Key: hex.EncodeToString(g.Key), NotBefore: uint64(g.NotBefore), NotAfter: uint64(g.NotAfter)}
	for _, r := range g.Scope {
		out.Scope = append(out.Scope, grantRuleJSON{Prefix: r.Prefix, Ops: r.Ops.String()})
	}
	return out
}

// grantLine is one grant as dt grants prints it: key, window, then prefix=ops pairs.
func grantLine(g dt.Grant) string {
	var b strings.Builder
	b.WriteString(hex.EncodeToString(g.Key))
	if g.NotAfter != 0 {
		fmt.Fprintf(&b, "  revoked at %s", g.NotAfter.Time().Format("2006-01-02 15:04:05.000Z"))
	} else {
		fmt.Fprintf(&b, "  since %s", g.NotBefore.Time().Format("2006-01-02 15:04:05.000Z"))
	}
	for _, r := range g.Scope {
		fmt.Fprintf(&b, "  %s=%s", r.Prefix, r.Ops)
	}
	return b.String()
}

func runGrants(ctx context.Context, args []string, env *Env) error {
	var f clientFlags
	var asJSON bool
	fs := newFlagSet(env, "grants", "dt grants --keys DIR --peer ADDR [--json]",
		"Lists the publisher and issuer keys the network's masters granted: key, since when (or when it was\n"+
			"revoked), and each prefix with the operations it allows.")
	fs.BoolVar(&asJSON, "json", false, "print a JSON array")
	f.register(fs)
	if err := f.parse(fs, args, 0, ""); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	t, ctx, err := openTransient(ctx, env, &f, false)
	if err != nil {
		return err
	}
	defer t.close()
	if err := t.n.WaitSynced(ctx); err != nil {
		return t.explain(ctx, err)
	}
	grants := t.n.Grants()
	slices.SortFunc(grants, func(a, b dt.Grant) int { return bytes.Compare(a.Key, b.Key) })
	if asJSON {
		out := make([]grantJSON, 0, len(grants))
		for _, g := range grants {
			out = append(out, grantOut(g))
		}
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	if len(grants) == 0 {
		fmt.Fprintln(env.Stderr, "no grants: a master grants a publisher key with `dt grant --site NAME PUBKEY`")
	}
	for _, g := range grants {
		fmt.Fprintln(env.Stdout, grantLine(g))
	}
	return t.close()
}
