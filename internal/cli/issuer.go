package cli

import (
	"context"
	"crypto/x509"
	"fmt"
	"os"

	"github.com/dt-cdn/dt/dt"
	"github.com/dt-cdn/dt/issuer"
	"github.com/dt-cdn/dt/nodehost"
)

// issuerFlags are dt issuer's own flags, beside the node's.
type issuerFlags struct {
	directory   string
	email       string
	root        string
	nameservers stringList
	edgeHTTP    stringList
}

func runIssuer(ctx context.Context, args []string, env *Env) error {
	var (
		nf nodeFlags
		f  issuerFlags
	)
	fs := newFlagSet(env, "issuer", "dt issuer --keys DIR --data DATADIR --peer ADDR... [--acme-directory URL] [--acme-email ADDRESS] [--acme-root FILE] [--admin ADDR]",
		"Runs a certificate issuer: a dt node that obtains and renews, through ACME, a certificate for\n"+
			"every name the network serves (the CDN zone's wildcard and apex, every site's hostnames)\n"+
			"and writes them into the table, private keys sealed, for every edge to serve. DNS-01 is\n"+
			"answered by dt's DNS nodes, HTTP-01 by the edges, from challenge records it writes.\n"+
			"Several may run: a lease in the table lets one act at a time, and another takes over when\n"+
			"it stops. The keys directory holds issuer.key (dt keygen --issuer, then dt grant\n"+
			"--certificates on a master) or master.key. The admin listener adds /issuer.")
	nf.register(fs)
	fs.StringVar(&f.directory, "acme-directory", issuer.DefaultDirectory, "the ACME directory `URL`")
	fs.StringVar(&f.email, "acme-email", "", "the ACME account's contact `ADDRESS`, for the CA's expiry warnings")
	fs.StringVar(&f.root, "acme-root", "", "trust the CA certificates in PEM `FILE` for the ACME server's HTTPS (a test CA such as Pebble)")
	fs.Var(&f.nameservers, "nameserver", "check DNS-01 answers on the DNS node at `ADDR` (host:port) before validation; repeatable; none: the zone's NS records")
	fs.Var(&f.edgeHTTP, "edge-http", "check HTTP-01 answers on the edge's port-80 listener at `ADDR` (host:port) before validation; repeatable")
	if err := parsePlainNode(fs, args, &nf, "an issuer"); err != nil {
		return err
	}
	cfg := issuer.Config{Directory: f.directory, Email: f.email, Nameservers: f.nameservers, EdgeHTTP: f.edgeHTTP}
	if f.root != "" {
		pem, err := os.ReadFile(f.root)
		if err != nil {
			return fmt.Errorf("--acme-root: %w", err)
		}
		cfg.Roots = x509.NewCertPool()
		if !cfg.Roots.AppendCertsFromPEM(pem) {
			return fs.usageErrorf("--acme-root %s: no PEM certificate", f.root)
		}
	}
	return runRole(ctx, env, &nf, func(host nodehost.Config) (*issuer.Issuer, error) {
		keys, err := issuerKeys(nf.keys)
		if err != nil {
			return nil, err
		}
		host.Node.Keys, host.Node.Master = keys, true
		cfg.Host = host
		return issuer.New(cfg)
	})
}

// issuerKeys reads the keys directory of an issuer: the master key when present (it works as
// an issuer key), else issuer.key as the granted writer key.
func issuerKeys(dir string) (dt.Keys, error) {
	keys, err := dt.LoadKeys(dir)
	if err != nil {
		return keys, err
	}
	if keys.Master != nil {
		return keys, nil
	}
	keys.Publisher, err = dt.LoadIssuerKey(dir)
	if err != nil {
		return keys, err
	}
	if keys.Publisher == nil {
		return keys, fmt.Errorf("%w: %s has neither %s nor %s", ErrNoMasterKey, dir, dt.IssuerKeyFile, dt.MasterKeyFile)
	}
	return keys, nil
}
