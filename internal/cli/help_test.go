package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/dt-cdn/dt/internal/testkit/needs"
)

// helpFlags are the flags each command parses and uses, written out by hand: a flag registered
// by a shared helper but not used by the command (--keep on dt deploys, --master on dt edge)
// shows up here as a difference. The serving roles (node, edge, redirector, dns) gain flags
// often; for them the test checks the flags every one of them must and must not have.
var helpFlags = map[string][]string{
	"keygen":      {"publisher", "issuer"},
	"grant":       {"keys", "peer", "timeout", "log-level", "site", "certificates"},
	"grants":      {"keys", "peer", "timeout", "log-level", "json"},
	"revoke":      {"keys", "peer", "timeout", "log-level"},
	"add":         {"keys", "peer", "timeout", "log-level"},
	"remove":      {"keys", "peer", "timeout", "log-level"},
	"send":        {"keys", "peer", "timeout", "log-level"},
	"demo":        {"publish", "keep", "log-level"},
	"publish":     {"config", "keys", "peer", "timeout", "json", "log-level", "cache-dir", "site", "keep", "dry-run", "include-hidden", "follow-symlinks", "spa", "clean-urls", "compression"},
	"deploys":     {"config", "keys", "peer", "timeout", "json", "log-level", "cache-dir", "site"},
	"rollback":    {"config", "keys", "peer", "timeout", "json", "log-level", "cache-dir", "site"},
	"site":        {"config", "keys", "peer", "timeout", "json", "log-level", "cache-dir", "host"},
	"network":     {"keys", "peer", "timeout", "log-level"},
	"sites":       {"config", "keys", "peer", "timeout", "json", "log-level", "cache-dir"},
	"dns-publish": {"keys", "peer", "timeout", "log-level", "origin", "dry-run", "remove-zone", "cache-dir"},
	"dns-records": {"keys", "peer", "timeout", "log-level", "zone"},
	"resolve":     {"keys", "peer", "timeout", "log-level", "type", "expect", "local", "json", "resolver"},
	"example":     {"base-port", "duration", "data"},
	"loadtest":    {"objects", "mode", "dir", "object-size", "writers", "batch", "timeout", "no-sync", "json", "log-cap"},
	"version":     {"json"},
	"guard":       {"data", "admin", "json", "timeout"},
	"stats":       {"admin", "site", "since", "json", "timeout"},
}

// roleFlags: flags every serving role has, and flags only dt node has.
var (
	roleFlags     = []string{"keys", "data", "listen", "peer", "admin", "log-level", "log-format", "ready-file"}
	nodeOnlyFlags = []string{"master"}
)

var (
	flagLine    = regexp.MustCompile(`^  --([a-z0-9-]+)(?: (\S+))?$`)
	synopsisRef = regexp.MustCompile(`--([a-z0-9-]+)`)
)

// TestHelpMatchesFlags checks every command's --help: it lists exactly the flags the command
// uses, each once; each default is stated once; placeholders are one upper-case word (or a
// literal form such as LAT,LON or burst|initial); the synopsis names only real flags; and there
// is at least one example.
func TestHelpMatchesFlags(t *testing.T) {
	if r := run(t, "", "help"); r.code != 0 || !strings.Contains(r.stdout, "version") {
		t.Errorf("dt help: exit %d\n%s", r.code, r.stdout)
	}
	for _, c := range commands() {
		if c.hidden {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			r := run(t, "", c.name, "--help")
			if r.code != 0 {
				t.Fatalf("exit %d", r.code)
			}
			lines := strings.Split(r.stdout, "\n")
			var listed []string
			for i, line := range lines {
				m := flagLine.FindStringSubmatch(line)
				if m == nil {
					continue
				}
				listed = append(listed, m[1])
				if ph := m[2]; ph != "" && !regexp.MustCompile(`^[A-Z][A-Z0-9.,|_-]*(\.[a-z]+)?$|^[a-z]+(\|[a-z]+)+$`).MatchString(ph) {
					t.Errorf("--%s has placeholder %q", m[1], ph)
				}
				if i+1 < len(lines) && strings.Count(lines[i+1], "default") > 1 {
					t.Errorf("--%s states its default twice: %s", m[1], lines[i+1])
				}
			}
			if dup := duplicates(listed); len(dup) > 0 {
				t.Errorf("flags listed twice: %v", dup)
			}
			if want, ok := helpFlags[c.name]; ok {
				if !sameSet(listed, want) {
					t.Errorf("help lists %v, want %v", sorted(listed), sorted(want))
				}
			} else {
				for _, f := range roleFlags {
					if !slices.Contains(listed, f) {
						t.Errorf("help lacks --%s", f)
					}
				}
				for _, f := range nodeOnlyFlags {
					if slices.Contains(listed, f) != (c.name == "node") {
						t.Errorf("--%s listed: %v", f, slices.Contains(listed, f))
					}
				}
			}
			synopsis := strings.TrimPrefix(lines[0], "Usage: ")
			for _, m := range synopsisRef.FindAllStringSubmatch(synopsis, -1) {
				if !slices.Contains(listed, m[1]) {
					t.Errorf("synopsis names --%s, which the command does not take: %s", m[1], synopsis)
				}
			}
			if !strings.Contains(r.stdout, "\nExamples:\n  dt ") && !strings.Contains(r.stdout, "\nExamples:\n  echo ") {
				t.Errorf("no example:\n%s", r.stdout)
			}
		})
	}
}

// TestGuardSubcommandsHelp: dt guard list and dt guard unblock each print their own usage, with
// the flags they parse and an example, and dt guard with no subcommand is a usage error.
func TestGuardSubcommandsHelp(t *testing.T) {
	for _, sub := range []string{"list", "unblock"} {
		r := run(t, "", "guard", sub, "--help")
		if r.code != 0 || !strings.HasPrefix(r.stdout, "Usage: dt guard "+sub+" ") || !strings.Contains(r.stdout, "\nExamples:\n  dt guard "+sub) {
			t.Errorf("dt guard %s --help: exit %d\n%s", sub, r.code, r.stdout)
		}
		var listed []string
		for line := range strings.SplitSeq(r.stdout, "\n") {
			if m := flagLine.FindStringSubmatch(line); m != nil {
				listed = append(listed, m[1])
			}
		}
		if !sameSet(listed, helpFlags["guard"]) {
			t.Errorf("dt guard %s --help lists %v, want %v", sub, sorted(listed), sorted(helpFlags["guard"]))
		}
	}
	if r := run(t, "", "guard"); r.code != 2 || !strings.Contains(r.stderr, "missing list or unblock") {
		t.Errorf("dt guard: exit %d\n%s", r.code, r.stderr)
	}
	if r := run(t, "", "guard", "list"); r.code != 2 || !strings.Contains(r.stderr, "--data DATADIR") {
		t.Errorf("dt guard list without --data or --admin: exit %d\n%s", r.code, r.stderr)
	}
}

func duplicates(s []string) []string {
	seen := map[string]bool{}
	var dup []string
	for _, x := range s {
		if seen[x] {
			dup = append(dup, x)
		}
		seen[x] = true
	}
	return dup
}

func sorted(s []string) []string {
	c := slices.Clone(s)
	slices.Sort(c)
	return c
}

func sameSet(a, b []string) bool { return slices.Equal(sorted(a), sorted(b)) }

// TestVersion: dt version and dt --version print the same line, --json its fields, and a
// node's /status carries it.
func TestVersion(t *testing.T) {
	a, b := run(t, "", "version"), run(t, "", "--version")
	if a.code != 0 || b.code != 0 || a.stdout != b.stdout || !strings.HasPrefix(a.stdout, "dt ") || !strings.Contains(a.stdout, runtime.Version()) {
		t.Fatalf("dt version: %d %q; dt --version: %d %q", a.code, a.stdout, b.code, b.stdout)
	}
	var info buildInfo
	if r := run(t, "", "version", "--json"); r.code != 0 || json.Unmarshal([]byte(r.stdout), &info) != nil || info.Go != runtime.Version() || info.Version == "" {
		t.Fatalf("dt version --json: %d %q", r.code, r.stdout)
	}
	keys := keygen(t)
	n := startNodeCmd(t, "--keys", keys, "--data", t.TempDir(), "--admin", "127.0.0.1:0", "--local", "--no-sync")
	var st struct {
		Build buildInfo `json:"build"`
	}
	getJSON(t, "http://"+n.info.Admin+"/status", &st)
	if st.Build != info {
		t.Errorf("/status build %+v, want %+v", st.Build, info)
	}
	if !strings.Contains(n.stderr.String(), "version="+info.Version) {
		t.Errorf("the node did not log its version:\n%s", n.stderr)
	}
}

// TestErrorsReadAsSentences: no package prefixes stuttered into a message, and a hint for a
// data directory held by another process, naming its PID.
func TestErrorsReadAsSentences(t *testing.T) {
	keys := keygen(t)
	r := run(t, "", "keygen", keys)
	if r.code != 1 || !strings.HasPrefix(r.stderr, "dt keygen: "+keys) || strings.Contains(r.stderr, ": dt: ") || !strings.Contains(r.stderr, "hint: keygen never overwrites") {
		t.Errorf("keygen over existing keys: %d %q", r.code, r.stderr)
	}
	data := t.TempDir()
	startNodeCmd(t, "--keys", keys, "--data", data, "--local", "--no-sync")
	r = run(t, "", "node", "--keys", keys, "--data", data, "--local", "--no-sync")
	want := fmt.Sprintf("in use by another running process (PID %d", os.Getpid())
	if r.code != 1 || !strings.Contains(r.stderr, want) || !strings.Contains(r.stderr, "--data") {
		t.Errorf("second node on one data directory: %d\n%s", r.code, r.stderr)
	}
}

// TestHints: the common causes of a failure get a hint that says what to do.
func TestHints(t *testing.T) {
	wrap := func(err error) error { return fmt.Errorf("dt: edge: %w", err) }
	key := writeFile(t, "network.key", "x")
	if err := os.Chmod(key, 0); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(key)
	if err != nil {
		t.Fatal(err)
	}
	owner := ownerOf(fi)
	cases := []struct {
		err  error
		want string
	}{
		{wrap(&net.OpError{Op: "listen", Net: "tcp", Addr: &net.TCPAddr{Port: 443}, Err: os.NewSyscallError("bind", syscall.EACCES)}),
			"setcap cap_net_bind_service=+ep"},
		{wrap(&net.OpError{Op: "listen", Net: "tcp", Addr: &net.TCPAddr{Port: 7000}, Err: os.NewSyscallError("bind", syscall.EADDRINUSE)}),
			"ss -ltnp"},
		{wrap(&fs.PathError{Op: "open", Path: "/etc/dt/keys/network.key", Err: syscall.EACCES}),
			"may not use /etc/dt/keys/network.key: keys on a server are owner root, group dt, network.key mode 0640"},
		{wrap(&fs.PathError{Op: "open", Path: key, Err: syscall.EACCES}), fmt.Sprintf("%s (%s, mode 0000)", key, owner)},
	}
	for _, c := range cases {
		got := sentence(c.err)
		if !strings.Contains(got, "hint: ") || !strings.Contains(got, c.want) || strings.Contains(got, "dt: ") {
			t.Errorf("%v:\n%s\nwant a hint with %q and no package prefix", c.err, got, c.want)
		}
	}
}

// TestHintsAsAnotherUser runs dt node as user nobody, which a root test can: on keys only root
// may read, it exits 1 naming the user, the file, its owner and mode, and how the packages set
// keys up; on a port below 1024, it exits 1 saying how to grant the capability.
func TestHintsAsAnotherUser(t *testing.T) {
	if os.Getuid() != 0 {
		needs.Skipf(t, "needs root to run dt as another user")
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		needs.Skipf(t, "no user nobody")
	}
	uid, _ := strconv.Atoi(nobody.Uid)
	gid, _ := strconv.Atoi(nobody.Gid)
	dir, err := os.MkdirTemp("", "dt-perm-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "dt")
	raw, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, raw, 0o755); err != nil {
		t.Fatal(err)
	}
	keys := filepath.Join(dir, "keys")
	if r := run(t, "", "keygen", keys); r.code != 0 {
		t.Fatal(r.stderr)
	}
	data := filepath.Join(dir, "data")
	for _, d := range []string{dir, keys} {
		os.Chmod(d, 0o755)
	}
	asNobody := func(args ...string) string {
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), childEnv+"=1")
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 1 {
			t.Fatalf("dt %v as nobody: %v\n%s", args, err, out)
		}
		t.Logf("dt %s as nobody:\n%s", strings.Join(args, " "), out)
		return string(out)
	}
	out := asNobody("node", "--keys", keys, "--data", data)
	want := fmt.Sprintf("user nobody may not use %s (root:root, mode 0600)", filepath.Join(keys, "network.key"))
	if !strings.Contains(out, want) || !strings.Contains(out, "group dt, network.key mode 0640") {
		t.Errorf("output lacks %q", want)
	}

	for _, name := range []string{"network.key", "master.pub"} {
		os.Chmod(filepath.Join(keys, name), 0o644)
	}
	out = asNobody("node", "--keys", keys, "--data", data)
	if !strings.Contains(out, "on a server, remove it from the keys directory") {
		t.Errorf("no hint to remove master.key")
	}
	os.Remove(filepath.Join(keys, "master.key"))
	if err := os.Mkdir(data, 0o700); err != nil {
		t.Fatal(err)
	}
	os.Chown(data, uid, gid)
	out = asNobody("node", "--keys", keys, "--data", data, "--listen", "127.0.0.1:1")
	if !strings.Contains(out, "port 1 is below 1024") || !strings.Contains(out, "setcap cap_net_bind_service=+ep") {
		t.Errorf("no capability hint")
	}
}
