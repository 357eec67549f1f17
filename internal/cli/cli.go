package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"strings"

	"github.com/dt-cdn/dt/internal/guardapi"
)

// Env is what a command may touch of the outside world, so tests can run commands in-process
// and capture their output.
type Env struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	// NodeReady, when set, is called once by `dt node`, `dt edge` and `dt redirector` after the
	// node, its admin listener and its visitor listeners are serving, with the addresses actually
	// bound (a port 0 is resolved): how a caller learns where a node started on port 0 listens.
	// It runs on the command's goroutine; it must not block for long. --ready-file writes the
	// same NodeInfo as JSON, for callers in another process.
	NodeReady func(NodeInfo)
}

// NodeInfo describes a node started by `dt node`, `dt edge` or `dt redirector`.
type NodeInfo struct {
	ID     string   `json:"node_id"`
	Listen []string `json:"listen"`          // peer listeners, resolved
	Admin  string   `json:"admin,omitempty"` // admin HTTP listener, resolved; empty when off
	PID    int      `json:"pid"`
	Serving
}

// Serving is what an edge or a redirector serves visitors on; empty for a plain node.
type Serving struct {
	HTTP      string `json:"http,omitempty"`       // --http listener, resolved
	HTTPS     string `json:"https,omitempty"`      // --https listener, resolved
	PublicURL string `json:"public_url,omitempty"` // where an edge tells redirectors to send visitors
}

// Main runs the dt command with the process's streams and arguments (without the program
// name) and returns the exit code. SIGINT and SIGTERM cancel the command's context; a second one
// kills the process as usual.
func Main(args []string) int {
	ctx, stop := signalContext(context.Background())
	defer stop()
	return Run(ctx, args, &Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr})
}

// Run runs the dt command given by args in env and returns its exit code: 0 on success or
// help, 2 on a usage error, 1 on any other failure (see the package documentation). It is the
// only place that turns errors into exit codes.
func Run(ctx context.Context, args []string, env *Env) int {
	if len(args) == 0 {
		fmt.Fprint(env.Stderr, topUsage())
		return 2
	}
	name := args[0]
	if name == "--version" || name == "-version" {
		name, args = "version", append([]string{"version"}, args[1:]...)
	}
	if name == "help" || name == "-h" || name == "--help" || name == "-help" {
		if len(args) > 1 {
			return Run(ctx, []string{args[1], "--help"}, env)
		}
		fmt.Fprint(env.Stdout, topUsage())
		return 0
	}
	i := slices.IndexFunc(commands(), func(c command) bool { return c.name == name })
	if i < 0 {
		fmt.Fprintf(env.Stderr, "dt: unknown command %q\n\n%s", name, topUsage())
		return 2
	}
	err := commands()[i].run(ctx, args[1:], env)
	if name == "guard" && len(args) > 1 && (args[1] == "list" || args[1] == "unblock") ||
		name == "site" && len(args) > 1 && (args[1] == "add" || args[1] == "set" || args[1] == "remove") ||
		name == "network" && len(args) > 1 && (args[1] == "set" || args[1] == "show") {
		name += " " + args[1] // errors name the subcommand, as its usage does
	}
	var uerr *usageError
	var cerr *exitCodeError
	switch {
	case err == nil, errors.Is(err, errHelp):
		return 0
	case errors.As(err, &uerr):
		fmt.Fprintf(env.Stderr, "dt %s: %s\n\n%s", name, sentence(uerr.err), uerr.usage)
		return 2
	case errors.As(err, &cerr):
		fmt.Fprintf(env.Stderr, "dt %s: %s\n", name, sentence(cerr.err))
		return cerr.code
	default:
		fmt.Fprintf(env.Stderr, "dt %s: %s\n", name, sentence(err))
		return 1
	}
}

// command is one subcommand.
type command struct {
	name    string
	summary string
	hidden  bool // internal commands, left out of `dt help`
	run     func(ctx context.Context, args []string, env *Env) error
}

func commands() []command {
	return []command{
		{name: "keygen", summary: "write a new network key and master key pair", run: runKeygen},
		{name: "node", summary: "run a node until interrupted", run: runNode},
		{name: "add", summary: "add a JSON object to the table through a peer", run: runAdd},
		{name: "remove", summary: "remove an object from the table through a peer", run: runRemove},
		{name: "grant", summary: "let a publisher key publish one site (a master's)", run: runGrant},
		{name: "grants", summary: "list the publisher keys granted and their scopes", run: runGrants},
		{name: "revoke", summary: "revoke a publisher key's grant from now on (a master's)", run: runRevoke},
		{name: "send", summary: "send a message to every node online", run: runSend},
		{name: "demo", summary: "run a whole CDN on this machine: a redirector, three edges and an example site", run: runDemo},
		{name: "edge", summary: "run an edge: serve the current deploy to visitors over HTTPS", run: runEdge},
		{name: "redirector", summary: "run a redirector: send visitors to the nearest live edge", run: runRedirector},
		{name: "publish", summary: "publish a static site directory (the same as dt-publish)", run: runPublish},
		{name: "deploys", summary: "list the deploys the network keeps", run: runDeploys},
		{name: "rollback", summary: "make a kept deploy current again", run: runRollback},
		{name: "site", summary: "add, change or remove a site (dt site add|set|remove NAME)", run: runSite},
		{name: "network", summary: "show or change the network-wide settings: the CDN zone (dt network show|set)", run: runNetwork},
		{name: "sites", summary: "list the sites of the network: names, hosts, current deploys", run: runSites},
		{name: "issuer", summary: "run a certificate issuer: one ACME client obtaining every certificate of the network", run: runIssuer},
		{name: "dns", summary: "run a DNS node: answer DNS for the zones the table holds, and GeoDNS for the site", run: runDNS},
		{name: "dns-publish", summary: "publish a zone file to every DNS node", run: runDNSPublish},
		{name: "dns-records", summary: "list the DNS records the table holds", run: runDNSRecords},
		{name: "resolve", summary: "resolve a name on every node online and check that they agree", run: runResolve},
		{name: "example", summary: "run the five-node example in one process", run: runExample},
		{name: "loadtest", summary: "measure a two-node load test with real processes", run: runLoadtest},
		{name: "stats", summary: "print a site's traffic as the redirector keeps it (requests, visitors, top pages, countries)", run: runStats},
		{name: "guard", summary: "list or lift a node's address blocks (dt guard list, dt guard unblock ADDR|all)", run: runGuard},
		{name: "version", summary: "print the version of this dt (also dt --version)", run: runVersion},
		{name: "loadtest-node", hidden: true, run: runLoadtestNode},
	}
}

func topUsage() string {
	var b strings.Builder
	b.WriteString("Usage: dt <command> [flags] [arguments]\n\nCommands:\n")
	width := 0
	for _, c := range commands() {
		if !c.hidden {
			width = max(width, len(c.name))
		}
	}
	for _, c := range commands() {
		if !c.hidden {
			fmt.Fprintf(&b, "  %-*s  %s\n", width, c.name, c.summary)
		}
	}
	b.WriteString("\nRun `dt help <command>` or `dt <command> --help` for its flags.\n")
	return b.String()
}

// usageError is a malformed command line. Run prints it with usage and exits 2.
type usageError struct {
	err   error
	usage string
}

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return ErrUsage }

// flagSet is a subcommand's flags with the text of its usage.
type flagSet struct {
	*flag.FlagSet
	env      *Env
	synopsis string // "dt add --keys DIR --peer ADDR [--timeout 30s] FILE"
	about    string // what the command does, a paragraph
}

func newFlagSet(env *Env, name, synopsis, about string) *flagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	// The flag package would print its own messages; Run prints them in one format instead.
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return &flagSet{FlagSet: fs, env: env, synopsis: synopsis, about: about}
}

// parse parses args, allowing flags after positional arguments (`dt add FILE --keys DIR`); a
// "--" ends the flags. On --help it prints usage on stdout and returns errHelp.
func (fs *flagSet) parse(args []string) error {
	var positional []string
	for {
		err := fs.Parse(args)
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(fs.env.Stdout, fs.usage())
			return errHelp
		}
		if err != nil {
			return &usageError{err: gnuFlagNames(err), usage: fs.usage()}
		}
		rest := fs.Args()
		consumed := len(args) - len(rest)
		if len(rest) == 0 || (consumed > 0 && args[consumed-1] == "--") {
			positional = append(positional, rest...)
			break
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
	// Parse again on the positional arguments alone so that Args and NArg report them.
	return fs.Parse(append([]string{"--"}, positional...))
}

// flagRef is a flag as the flag package names it in its errors: -name.
var flagRef = regexp.MustCompile(`(flag|defined:) -([a-zA-Z0-9])`)

// gnuFlagNames rewrites the flag package's errors to name flags as the usage does, --name.
func gnuFlagNames(err error) error {
	msg := flagRef.ReplaceAllString(err.Error(), "$1 --$2")
	msg = strings.Replace(msg, "flag provided but not defined:", "unknown flag", 1)
	return errors.New(msg)
}

// usageErrorf reports a malformed command line.
func (fs *flagSet) usageErrorf(format string, args ...any) error {
	return &usageError{err: fmt.Errorf(format, args...), usage: fs.usage()}
}

// wantArgs checks the number of positional arguments.
func (fs *flagSet) wantArgs(n int, what string) error {
	switch {
	case fs.NArg() < n:
		return fs.usageErrorf("missing %s", what)
	case fs.NArg() > n:
		return fs.usageErrorf("unexpected argument %q", fs.Arg(n))
	}
	return nil
}

// usage formats the synopsis, the description and every flag, GNU style (--name).
func (fs *flagSet) usage() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Usage: %s\n\n%s\n", fs.synopsis, fs.about)
	first := true
	fs.VisitAll(func(f *flag.Flag) {
		if first {
			b.WriteString("\nFlags:\n")
			first = false
		}
		arg, text := flag.UnquoteUsage(f)
		fmt.Fprintf(&b, "  --%s", f.Name)
		if arg != "" {
			fmt.Fprintf(&b, " %s", arg)
		}
		fmt.Fprintf(&b, "\n      %s", strings.ReplaceAll(text, "\n", "\n      "))
		if d := f.DefValue; d != "" && d != "0" && d != "0s" && d != "false" && d != "[]" && !strings.Contains(text, "(default") {
			fmt.Fprintf(&b, " (default %s)", d)
		}
		b.WriteString("\n")
	})
	if ex := examples[fs.Name()]; len(ex) > 0 {
		b.WriteString("\nExamples:\n")
		for _, e := range ex {
			fmt.Fprintf(&b, "  %s\n", e)
		}
	}
	return b.String()
}

// prefixList is a repeatable flag of IP prefixes; an address alone is its single-address prefix.
type prefixList []netip.Prefix

var _ flag.Value = (*prefixList)(nil)

func (l *prefixList) String() string {
	s := make([]string, len(*l))
	for i, p := range *l {
		s[i] = p.String()
	}
	return strings.Join(s, ",")
}

func (l *prefixList) Set(s string) error {
	t, err := guardapi.ParseTarget(s)
	if err != nil || t.All {
		return fmt.Errorf("%q is not an IP address or a prefix such as 192.0.2.0/24", s)
	}
	*l = append(*l, t.Prefix)
	return nil
}

// stringList is a repeatable string flag (--peer A --peer B).
type stringList []string

var _ flag.Value = (*stringList)(nil)

func (l *stringList) String() string { return strings.Join(*l, ",") }

func (l *stringList) Set(s string) error {
	if s == "" {
		return errors.New("empty value")
	}
	*l = append(*l, s)
	return nil
}
