package cli

import (
	"github.com/dt-cdn/dt/internal/connlimit"
)

// servingFlags are the visitor-facing listeners and certificates shared by dt edge and dt
// redirector.
type servingFlags struct {
	http, https string
	domains     stringList
	acmeDir     string
	acmeEmail   string
	conns       connFlags
}

// connFlags cap visitor connections (see package internal/connlimit).
type connFlags struct {
	max, perIP, fdReserve int
}

func (s *servingFlags) register(fs *flagSet, httpUsage string) {
	fs.StringVar(&s.http, "http", "", httpUsage)
	fs.StringVar(&s.https, "https", "", "serve visitors over HTTPS (HTTP/2) on `ADDR`")
	fs.Var(&s.domains, "domain", "get a certificate for `NAME` by ACME; repeatable (without: a locally generated certificate)")
	fs.StringVar(&s.acmeDir, "acme-directory", "", "ACME directory `URL` (default: Let's Encrypt)")
	fs.StringVar(&s.acmeEmail, "acme-email", "", "contact `ADDRESS` for the ACME account")
	fs.IntVar(&s.conns.max, "max-conns", connlimit.DefaultMaxConns, "accept at most `N` visitor connections at once, over all listeners (lowered to fit the descriptor limit less --fd-reserve)")
	fs.IntVar(&s.conns.perIP, "max-conns-per-ip", connlimit.DefaultMaxConnsPerAddr, "accept at most `N` visitor connections at once from one IPv4 address or IPv6 /64")
	fs.IntVar(&s.conns.fdReserve, "fd-reserve", connlimit.DefaultFDReserve, "keep `N` file descriptors that visitors cannot take, for the node's peers, database and files (negative: no bound from the descriptor limit)")
}

func (s *servingFlags) check(fs *flagSet) error {
	if s.http == "" && s.https == "" {
		return fs.usageErrorf("--http or --https is required")
	}
	if len(s.domains) > 0 && s.https == "" {
		return fs.usageErrorf("--domain needs --https")
	}
	if s.conns.max <= 0 || s.conns.perIP <= 0 {
		return fs.usageErrorf("--max-conns and --max-conns-per-ip must be positive")
	}
	return nil
}

// parsePlainNode parses the flags of a command that runs a plain (non-master) node with no
// positional arguments, and checks the node's flags.
func parsePlainNode(fs *flagSet, args []string, nf *nodeFlags, role string) error {
	if err := fs.parse(args); err != nil {
		return err
	}
	if err := fs.wantArgs(0, ""); err != nil {
		return err
	}
	if err := nf.check(fs); err != nil {
		return err
	}
	if nf.master {
		return fs.usageErrorf("%s is not a master: drop --master", role)
	}
	return nil
}
