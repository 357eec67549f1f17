package cli

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/dt-cdn/dt/internal/testkit/syncbuf"
	"github.com/dt-cdn/dt/internal/testkit/wait"
)

// childEnv makes the test binary act as the dt binary: the load test re-executes its own binary
// (os.Executable), which in tests is this one.
const childEnv = "DT_CLI_TEST_AS_DT"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		os.Exit(Main(os.Args[1:]))
	}
	// Commands that keep caches (dt publish) must not write into the user's home during tests.
	cache, err := os.MkdirTemp("", "dt-cli-test-cache-")
	if err != nil {
		panic(err)
	}
	os.Setenv("XDG_CACHE_HOME", cache)
	code := m.Run()
	os.RemoveAll(cache)
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// result is a finished command.
type result struct {
	code           int
	stdout, stderr string
}

// run runs dt with args in-process and returns its exit code and output.
func run(t testing.TB, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out, errOut syncbuf.Buffer
	code := Run(ctx, args, &Env{Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errOut})
	return result{code: code, stdout: out.String(), stderr: errOut.String()}
}

// keygen writes a fresh keys directory.
func keygen(t testing.TB) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "keys")
	if r := run(t, "", "keygen", dir); r.code != 0 {
		t.Fatalf("keygen: %d %s", r.code, r.stderr)
	}
	return dir
}

// waitFor polls cond until it returns nil or the timeout passes (see package wait).
func waitFor(t testing.TB, timeout time.Duration, cond func() error) {
	t.Helper()
	wait.For(t, timeout, cond)
}

func TestUsage(t *testing.T) {
	keys := keygen(t)
	tests := []struct {
		name     string
		args     []string
		code     int
		stdout   []string // substrings
		stderr   []string
		noStdout bool
	}{
		{name: "no command", args: nil, code: 2, stderr: []string{"Usage: dt <command>"}},
		{name: "unknown command", args: []string{"frobnicate"}, code: 2, stderr: []string{`unknown command "frobnicate"`, "Commands:"}},
		{name: "help", args: []string{"help"}, code: 0, stdout: []string{"keygen", "node", "add", "remove", "send", "example", "loadtest"}},
		{name: "help hides internal commands", args: []string{"--help"}, code: 0, stdout: []string{"Commands:"}},
		{name: "help command", args: []string{"help", "node"}, code: 0, stdout: []string{"--keys DIR", "--data DATADIR", "--master", "--listen ADDR", "--peer ADDR", "--admin ADDR", "--log-level LEVEL", "--log-format FORMAT"}},
		{name: "add --help", args: []string{"add", "--help"}, code: 0, stdout: []string{"Usage: dt add", "--keys", "--peer", "--timeout DURATION", "(default 30s)"}},
		{name: "remove -h", args: []string{"remove", "-h"}, code: 0, stdout: []string{"Usage: dt remove"}},
		{name: "send -h", args: []string{"send", "-h"}, code: 0, stdout: []string{"Usage: dt send"}},
		{name: "keygen -h", args: []string{"keygen", "-h"}, code: 0, stdout: []string{"Usage: dt keygen DIR"}},
		{name: "example --help", args: []string{"example", "--help"}, code: 0, stdout: []string{"--base-port PORT", "(default 7001)", "--duration", "--data DIR"}},
		{name: "loadtest --help", args: []string{"loadtest", "--help"}, code: 0, stdout: []string{"--objects N", "(default 10000)", "--mode burst|initial", "(default burst)", "--dir DIR", "--object-size BYTES", "--json"}},
		{name: "keygen without DIR", args: []string{"keygen"}, code: 2, stderr: []string{"dt keygen: missing DIR", "Usage: dt keygen"}, noStdout: true},
		{name: "keygen two dirs", args: []string{"keygen", "a", "b"}, code: 2, stderr: []string{`unexpected argument "b"`}},
		{name: "unknown flag", args: []string{"node", "--bogus"}, code: 2, stderr: []string{"dt node: unknown flag --bogus", "Usage: dt node"}},
		{name: "node without --data", args: []string{"node", "--keys", keys}, code: 2, stderr: []string{"--data is required"}},
		{name: "node bad level", args: []string{"node", "--keys", keys, "--data", "d", "--log-level", "loud"}, code: 2, stderr: []string{"--log-level"}},
		{name: "node bad format", args: []string{"node", "--keys", keys, "--data", "d", "--log-format", "xml"}, code: 2, stderr: []string{"--log-format"}},
		{name: "add without FILE", args: []string{"add", "--keys", keys, "--peer", "127.0.0.1:1"}, code: 2, stderr: []string{"missing FILE"}},
		{name: "add without peer", args: []string{"add", "--keys", keys, "x.json"}, code: 2, stderr: []string{"--peer is required"}},
		{name: "remove bad id", args: []string{"remove", "--keys", keys, "--peer", "127.0.0.1:1", "xyz"}, code: 2, stderr: []string{"not an object id"}},
		{name: "bad duration", args: []string{"add", "--timeout", "soon"}, code: 2, stderr: []string{"invalid value"}},
		{name: "loadtest bad mode", args: []string{"loadtest", "--mode", "fast"}, code: 2, stderr: []string{`--mode "fast"`}},
		{name: "empty peer", args: []string{"send", "--peer", "", "{}"}, code: 2, stderr: []string{"empty value"}},
		{name: "edge zero cap", args: []string{"edge", "--keys", keys, "--data", "d", "--http", "127.0.0.1:0", "--max-conns", "0"}, code: 2, stderr: []string{"--max-conns"}},
		{name: "redirector negative cap", args: []string{"redirector", "--keys", keys, "--data", "d", "--http", "127.0.0.1:0", "--max-conns-per-ip", "-1"}, code: 2, stderr: []string{"--max-conns-per-ip"}},
		{name: "edge --help", args: []string{"edge", "--help"}, code: 0, stdout: []string{"--max-conns N", "(default 10000)", "--max-conns-per-ip N", "(default 256)", "--fd-reserve N", "(default 1024)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := run(t, "", tt.args...)
			if r.code != tt.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", r.code, tt.code, r.stdout, r.stderr)
			}
			for _, s := range tt.stdout {
				if !strings.Contains(r.stdout, s) {
					t.Errorf("stdout lacks %q:\n%s", s, r.stdout)
				}
			}
			for _, s := range tt.stderr {
				if !strings.Contains(r.stderr, s) {
					t.Errorf("stderr lacks %q:\n%s", s, r.stderr)
				}
			}
			if tt.code == 2 && !strings.Contains(r.stderr, "Usage:") {
				t.Errorf("usage error without usage:\n%s", r.stderr)
			}
			if tt.noStdout && r.stdout != "" {
				t.Errorf("stdout not empty: %q", r.stdout)
			}
		})
	}
	if r := run(t, "", "help"); strings.Contains(r.stdout, "loadtest-node") {
		t.Errorf("help lists the internal command:\n%s", r.stdout)
	}
}

// Every flag of every command is documented in its usage: each "  --name" line is followed by
// a line of text.
func TestEveryFlagDocumented(t *testing.T) {
	for _, c := range commands() {
		r := run(t, "", c.name, "--help")
		if r.code != 0 {
			t.Fatalf("%s --help: exit %d", c.name, r.code)
		}
		lines := strings.Split(r.stdout, "\n")
		flags := 0
		for i, line := range lines {
			if !strings.HasPrefix(line, "  --") {
				continue
			}
			flags++
			if i+1 >= len(lines) || !strings.HasPrefix(lines[i+1], "      ") || len(strings.TrimSpace(lines[i+1])) < 10 {
				t.Errorf("%s: %s has no description", c.name, strings.TrimSpace(line))
			}
		}
		if c.name != "keygen" && flags == 0 {
			t.Errorf("%s --help lists no flags:\n%s", c.name, r.stdout)
		}
	}
}

func TestFailureExitsOne(t *testing.T) {
	keys := keygen(t)
	r := run(t, "", "add", "--keys", keys, "--peer", "127.0.0.1:1", filepath.Join(t.TempDir(), "missing.json"))
	if r.code != 1 || !strings.HasPrefix(r.stderr, "dt add: ") || strings.Contains(r.stderr, "Usage:") {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestFlagsAfterArguments(t *testing.T) {
	// "--" ends the flags: what follows is positional even if it looks like a flag.
	fs := newFlagSet(&Env{Stdout: &bytes.Buffer{}}, "x", "x", "x")
	var peers stringList
	fs.Var(&peers, "peer", "`ADDR`")
	if err := fs.parse([]string{"a", "--peer", "p1", "b", "--", "--peer", "c"}); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(fs.Args(), " "); got != "a b --peer c" {
		t.Fatalf("positional = %q", got)
	}
	if got := strings.Join(peers, " "); got != "p1" {
		t.Fatalf("peers = %q", got)
	}
}

// FuzzParse checks that interspersed parsing keeps the positional arguments in order and never
// loses one.
func FuzzParse(f *testing.F) {
	f.Add("a --peer p b - c")
	f.Add("-- --peer x")
	f.Add("--peer=1 --peer 2 x --json y")
	f.Add("--")
	f.Fuzz(func(t *testing.T, line string) {
		args := strings.Fields(line)
		fs := newFlagSet(&Env{Stdout: &bytes.Buffer{}}, "x", "x", "x")
		var peers stringList
		var j bool
		fs.Var(&peers, "peer", "`ADDR`")
		fs.BoolVar(&j, "json", false, "json")
		if err := fs.parse(args); err != nil {
			return // a malformed line is reported, not mangled
		}
		// Rebuild the expected positional list by hand.
		var want []string
		for i := 0; i < len(args); i++ {
			a := args[i]
			switch {
			case a == "--":
				want = append(want, args[i+1:]...)
				i = len(args)
			case a == "--peer" || a == "-peer":
				i++
			case strings.HasPrefix(a, "-") && len(a) > 1:
			default:
				want = append(want, a)
			}
		}
		if got := fs.Args(); strings.Join(got, "\x00") != strings.Join(want, "\x00") {
			t.Fatalf("args %q: positional %q, want %q", args, got, want)
		}
	})
}
