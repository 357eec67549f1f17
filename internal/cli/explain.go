package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"

	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/dt-cdn/dt/dt"
)

// packagePrefixes are the prefixes the packages put on their errors ("dt: key file exists"):
// right in a log line, a stutter in a message for a person (`dt keygen: dt: x: dt: y`).
var packagePrefixes = []string{"dt: ", "cli: ", "publish: ", "site: ", "blobs: ", "deploy: ", "edge: ",
	"redirector: ", "heartbeat: ", "zone: ", "certs: ", "resolve: ", "server: ", "geo: ", "client: ", "example: "}

// fieldFlags names, in the packages' configuration errors a command line can reach, the flag
// (or file) a person set instead of the Go field.
var fieldFlags = strings.NewReplacer(
	"Config.DataDir", "--data",
	"Config.Keys.Network", "network.key",
	"Config.PublicURL", "--public-url",
	"Config.Name must be a domain name", "--geo-name must be a domain name",
)

// repeatedOp is a net error wrapped with the operation it already names: "listen on ADDR: listen
// tcp ADDR: bind: …".
var repeatedOp = regexp.MustCompile(`(listen on \S+): listen tcp[46]? \S+: `)

// sentence formats err for a person: one line (several for a list of peers) with the package
// prefixes dropped, and a hint when the cause is a common one.
func sentence(err error) string {
	msg := fieldFlags.Replace(err.Error())
	msg = repeatedOp.ReplaceAllString(msg, "$1: ")
	for _, p := range packagePrefixes {
		msg = strings.TrimPrefix(msg, p)
		msg = strings.ReplaceAll(msg, ": "+p, ": ")
	}
	if h := hint(err); h != "" {
		msg += "\n  hint: " + h
	}
	return msg
}

// hint says what to do about the common causes of a failure, or "".
func hint(err error) string {
	var opErr *net.OpError
	var pathErr *fs.PathError
	switch {
	case errors.As(err, &opErr) && opErr.Op == "listen" && errors.Is(err, syscall.EACCES):
		if port := portOf(opErr.Addr); port > 0 && port < 1024 {
			return fmt.Sprintf("port %d is below 1024, which needs a capability: run `sudo setcap cap_net_bind_service=+ep %s`, "+
				"or start dt from its systemd unit (AmbientCapabilities=CAP_NET_BIND_SERVICE)", port, executable())
		}
	case errors.As(err, &opErr) && opErr.Op == "listen" && errors.Is(err, syscall.EADDRINUSE):
		return "another process listens on that address: find it with `ss -ltnp`, or choose another port"
	case errors.Is(err, bolterrors.ErrTimeout):
		return "the data directory is in use by another running process" + holderOf(err) +
			": stop it first, or give this command its own --data"
	case errors.Is(err, dt.ErrKeyExists):
		return "keygen never overwrites keys: choose another directory, or remove the old keys if nothing uses them"
	case errors.As(err, &pathErr) && errors.Is(err, fs.ErrPermission):
		return permissionHint(pathErr.Path)
	}
	return ""
}

// permissionHint says who may not use path and how the packages set such a file up.
func permissionHint(path string) string {
	what := path
	if fi, err := os.Stat(path); err == nil {
		what = fmt.Sprintf("%s (%s, mode %04o)", path, ownerOf(fi), fi.Mode().Perm())
	}
	h := fmt.Sprintf("user %s may not use %s", currentUser(), what)
	if filepath.Base(path) == dt.MasterKeyFile {
		return h + ": only a machine that publishes needs master.key; on a server, remove it from the keys directory"
	}
	if strings.HasSuffix(path, ".key") || strings.HasSuffix(path, ".pub") {
		return h + ": keys on a server are owner root, group dt, network.key mode 0640 and master.pub 0644, in /etc/dt/keys " +
			"(owner root, group dt, mode 0750), and dt runs as user dt; on a laptop, your own user with mode 0600 (dt keygen's)"
	}
	return h + ": a data directory belongs to the user dt runs as (the units run as dt; `chown -R dt:dt DIR`)"
}

func portOf(a net.Addr) int {
	if a == nil {
		return 0
	}
	_, p, err := net.SplitHostPort(a.String())
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(p)
	return n
}

func executable() string {
	if p, err := os.Executable(); err == nil {
		return p
	}
	return "/usr/bin/dt"
}

func currentUser() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return strconv.Itoa(os.Getuid())
}

// pidFile is the file beside a node's database naming the process that has it open: bbolt's
// lock says only that some process holds it.
const pidFile = "dt.pid"

// writePID records this process as the holder of dataDir's database.
func writePID(dataDir string) error {
	return os.WriteFile(filepath.Join(dataDir, pidFile), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644)
}

// removePID removes the record once the database is closed.
func removePID(dataDir string) { os.Remove(filepath.Join(dataDir, pidFile)) }

// lockedDir is the error of opening a data directory whose database another process holds.
type lockedDir struct {
	dir string
	err error
}

func (e *lockedDir) Error() string {
	return fmt.Sprintf("data directory %s: %v", e.dir, e.err)
}
func (e *lockedDir) Unwrap() error { return e.err }

// holderOf names the process recorded as holding the database, if err is a lockedDir and the
// record is there.
func holderOf(err error) string {
	var ld *lockedDir
	if !errors.As(err, &ld) {
		return ""
	}
	raw, rerr := os.ReadFile(filepath.Join(ld.dir, pidFile))
	if rerr != nil {
		return ""
	}
	pid, perr := strconv.Atoi(strings.TrimSpace(string(raw)))
	if perr != nil || pid <= 0 {
		return ""
	}
	return fmt.Sprintf(" (PID %d, per %s)", pid, filepath.Join(ld.dir, pidFile))
}
