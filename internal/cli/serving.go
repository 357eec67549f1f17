package cli

import (
	"log/slog"
	"path/filepath"
	"sync"

	"github.com/dt-cdn/dt/internal/certs"
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

// connFlags cap visitor connections (connlimit.Config).
type connFlags struct {
	max, perIP, fdReserve int
}

func (c *connFlags) config() connlimit.Config {
	return connlimit.Config{MaxConns: c.max, MaxConnsPerAddr: c.perIP, FDReserve: c.fdReserve}
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

// certificates returns the certificate manager for --https (kept in DATADIR/certs), or nil
// without --https.
func (s *servingFlags) certificates(dataDir string, log *slog.Logger) (*certs.Manager, error) {
	if s.https == "" {
		return nil, nil
	}
	return certs.New(certs.Config{Domains: s.domains, CacheDir: filepath.Join(dataDir, "certs"),
		ACMEDirectory: s.acmeDir, Email: s.acmeEmail, Logger: log})
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

// later holds a service built on a node after the node opened, for the node's hooks, which run
// from the start: the event hook waits for it (events queue in the node meanwhile), status and
// admin hooks see nil until then. A failed start settles it with nil, releasing the waiters.
type later[T any] struct {
	once sync.Once
	done chan struct{}
	v    *T
}

func newLater[T any]() *later[T] { return &later[T]{done: make(chan struct{})} }

// set settles the value; only the first call counts.
func (l *later[T]) set(v *T) {
	l.once.Do(func() {
		l.v = v
		close(l.done)
	})
}

// wait blocks until the value is settled, and returns it (nil after a failed start).
func (l *later[T]) wait() *T {
	<-l.done
	return l.v
}

// get returns the value if it is settled, nil otherwise, without blocking.
func (l *later[T]) get() *T {
	select {
	case <-l.done:
		return l.v
	default:
		return nil
	}
}
