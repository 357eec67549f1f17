package cli

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/dt-cdn/dt/dt"
)

func runKeygen(ctx context.Context, args []string, env *Env) error {
	var publisher, issuer bool
	fs := newFlagSet(env, "keygen", "dt keygen DIR | dt keygen --publisher DIR | dt keygen --issuer DIR",
		"Writes a new network key (network.key, secret, mode 0600), a master signing key\n"+
			"(master.key, secret, mode 0600) and its public key (master.pub, mode 0644) into DIR,\n"+
			"created if missing, and prints their paths. It never overwrites an existing key file.\n"+
			"Give every node network.key and master.pub; give master.key only to masters.\n"+
			"With --publisher it writes a publisher key pair instead (publisher.key, secret, mode\n"+
			"0600, and publisher.pub): it publishes nothing until a master runs dt grant with the\n"+
			"contents of publisher.pub. Copy the network's network.key and master.pub beside it.\n"+
			"With --issuer it writes a certificate issuer key pair (issuer.key, issuer.pub) for dt\n"+
			"issuer: it writes nothing until a master runs dt grant --certificates with issuer.pub.")
	fs.BoolVar(&publisher, "publisher", false, "write a publisher key pair (publisher.key, publisher.pub) instead")
	fs.BoolVar(&issuer, "issuer", false, "write a certificate issuer key pair (issuer.key, issuer.pub) instead")
	if err := fs.parse(args); err != nil {
		return err
	}
	if err := fs.wantArgs(1, "DIR"); err != nil {
		return err
	}
	dir := fs.Arg(0)
	if publisher && issuer {
		return fs.usageErrorf("--publisher and --issuer exclude each other")
	}
	if issuer {
		if _, err := dt.GenerateIssuerKey(dir, nil); err != nil {
			return err
		}
		for _, name := range []string{dt.IssuerKeyFile, dt.IssuerPubKeyFile} {
			fmt.Fprintln(env.Stdout, filepath.Join(dir, name))
		}
		return nil
	}
	if publisher {
		if _, err := dt.GeneratePublisherKey(dir, nil); err != nil {
			return err
		}
		for _, name := range []string{dt.PublisherKeyFile, dt.PublisherPubKeyFile} {
			fmt.Fprintln(env.Stdout, filepath.Join(dir, name))
		}
		return nil
	}
	if err := dt.GenerateKeys(dir, nil); err != nil {
		return err
	}
	for _, name := range []string{dt.NetworkKeyFile, dt.MasterKeyFile, dt.MasterPubKeyFile} {
		fmt.Fprintln(env.Stdout, filepath.Join(dir, name))
	}
	return nil
}
