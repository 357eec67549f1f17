package cli

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/dt-cdn/dt/dt"
)

func runKeygen(ctx context.Context, args []string, env *Env) error {
	var publisher bool
	fs := newFlagSet(env, "keygen", "dt keygen DIR | dt keygen --publisher DIR",
		"Writes a new network key (network.key, secret, mode 0600), a master signing key\n"+
			"(master.key, secret, mode 0600) and its public key (master.pub, mode 0644) into DIR,\n"+
			"created if missing, and prints their paths. It never overwrites an existing key file.\n"+
			"Give every node network.key and master.pub; give master.key only to masters.\n"+
			"With --publisher it writes a publisher key pair instead (publisher.key, secret, mode\n"+
			"0600, and publisher.pub): it publishes nothing until a master runs dt grant with the\n"+
			"contents of publisher.pub. Copy the network's network.key and master.pub beside it.")
	fs.BoolVar(&publisher, "publisher", false, "write a publisher key pair (publisher.key, publisher.pub) instead")
	if err := fs.parse(args); err != nil {
		return err
	}
	if err := fs.wantArgs(1, "DIR"); err != nil {
		return err
	}
	dir := fs.Arg(0)
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
