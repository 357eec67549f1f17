package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"text/tabwriter"
	"time"

	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/dt-cdn/dt/dt"
)

// The admin listener's routes for the address guard. GET /guard lists the blocks in force;
// POST /guard/unblock lifts them. The POST takes a JSON body, {"target": "ADDR|PREFIX|all"}, and
// is refused unless its Content-Type is application/json and it carries no Origin header: a
// page in a browser on the node's machine can then neither send it cross-origin (the content
// type needs a CORS preflight, which the admin listener never grants) nor through a DNS name
// rebound to loopback (browsers send Origin with every POST; dt guard does not).
const (
	guardPath        = "/guard"
	guardUnblockPath = "/guard/unblock"
	// maxUnblockBody bounds the body of POST /guard/unblock; a target is a few dozen bytes.
	maxUnblockBody = 4 << 10
)

// guardList is the body of GET /guard and of `dt guard list --json`.
type guardList struct {
	Blocks []dt.Block `json:"blocks"`
}

// unblockRequest is the body of POST /guard/unblock.
type unblockRequest struct {
	// Target is an IP address, a prefix (CIDR) or "all".
	Target string `json:"target"`
}

// unblockResult is the answer of POST /guard/unblock and `dt guard unblock --json`.
type unblockResult struct {
	Lifted []dt.Block `json:"lifted"`
	// Error says why nothing was lifted; empty on success.
	Error string `json:"error,omitempty"`
}

// blockStore is what dt guard works on: a running node or a stopped node's data directory.
type blockStore interface {
	Blocks() []dt.Block
	Unblock(netip.Prefix) ([]dt.Block, error)
	UnblockAll() ([]dt.Block, error)
}

// unblockTarget is a parsed ADDR|PREFIX|all: all, or a valid prefix.
type unblockTarget struct {
	all    bool
	prefix netip.Prefix
}

// parseUnblockTarget accepts "all", an IP address (IPv6 in brackets or not, with a zone or a port
// as a log line shows it) or a prefix in CIDR notation.
func parseUnblockTarget(s string) (unblockTarget, error) {
	s = strings.TrimSpace(s)
	if s == "all" {
		return unblockTarget{all: true}, nil
	}
	if p, err := netip.ParsePrefix(s); err == nil {
		return unblockTarget{prefix: p.Masked()}, nil
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		s = ap.Addr().String()
	}
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		s = s[1 : len(s)-1]
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return unblockTarget{}, fmt.Errorf("%q is not an IP address, a prefix such as 192.0.2.0/24, or all", s)
	}
	a = a.WithZone("")
	return unblockTarget{prefix: netip.PrefixFrom(a, a.BitLen())}, nil
}

func (t unblockTarget) String() string {
	if t.all {
		return "all"
	}
	if t.prefix.IsSingleIP() {
		return t.prefix.Addr().String()
	}
	return t.prefix.String()
}

// lift lifts target's blocks in s.
func lift(s blockStore, target unblockTarget) ([]dt.Block, error) {
	if target.all {
		lifted, err := s.UnblockAll()
		if errors.Is(err, dt.ErrNotBlocked) {
			return []dt.Block{}, nil // nothing to lift is not a failure for "all"
		}
		return lifted, err
	}
	lifted, err := s.Unblock(target.prefix)
	if errors.Is(err, dt.ErrNotBlocked) {
		return nil, fmt.Errorf("%s is not blocked (dt guard list shows the blocks)", target)
	}
	return lifted, err
}

// guardRoutes adds the guard's routes to a node's admin listener.
func guardRoutes(mux *http.ServeMux, s blockStore, log *slog.Logger) {
	mux.HandleFunc("GET "+guardPath, func(w http.ResponseWriter, r *http.Request) {
		writeJSONResponse(w, http.StatusOK, guardList{Blocks: s.Blocks()})
	})
	mux.HandleFunc("POST "+guardUnblockPath, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Origin") != "" {
			writeJSONResponse(w, http.StatusForbidden, unblockResult{Error: "requests from browsers are refused"})
			return
		}
		if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
			writeJSONResponse(w, http.StatusUnsupportedMediaType, unblockResult{Error: "the body must be application/json"})
			return
		}
		var req unblockRequest
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxUnblockBody))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			writeJSONResponse(w, http.StatusBadRequest, unblockResult{Error: fmt.Sprintf("body: %v", err)})
			return
		}
		target, err := parseUnblockTarget(req.Target)
		if err != nil {
			writeJSONResponse(w, http.StatusBadRequest, unblockResult{Error: err.Error()})
			return
		}
		lifted, err := lift(s, target)
		if err != nil {
			status := http.StatusInternalServerError
			if lifted == nil {
				status = http.StatusNotFound
			}
			writeJSONResponse(w, status, unblockResult{Lifted: orEmpty(lifted), Error: sentence(err)})
			return
		}
		log.Info("Blocks lifted through the admin listener", slog.String("target", target.String()),
			slog.Int("lifted", len(lifted)), slog.String("from", r.RemoteAddr))
		writeJSONResponse(w, http.StatusOK, unblockResult{Lifted: lifted})
	})
}

func orEmpty(bs []dt.Block) []dt.Block {
	if bs == nil {
		return []dt.Block{}
	}
	return bs
}

func writeJSONResponse(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v) // a write error means the client left
}

// guardFlags are the flags of dt guard list and dt guard unblock.
type guardFlags struct {
	data    string
	admin   string
	json    bool
	timeout time.Duration
}

func (f *guardFlags) register(fs *flagSet) {
	fs.StringVar(&f.data, "data", "", "the stopped node's `DATADIR` (its database is locked while it runs)")
	fs.StringVar(&f.admin, "admin", "", "the running node's admin listener, its --admin `ADDR`")
	fs.BoolVar(&f.json, "json", false, "print JSON")
	fs.DurationVar(&f.timeout, "timeout", 10*time.Second, "give up on the admin listener after `DURATION`")
}

func (f *guardFlags) check(fs *flagSet) error {
	if (f.data == "") == (f.admin == "") {
		return fs.usageErrorf("give either --data DATADIR (a stopped node) or --admin ADDR (a running one)")
	}
	if f.timeout <= 0 {
		return fs.usageErrorf("--timeout must be positive")
	}
	return nil
}

const guardAbout = "Lists or lifts the address blocks of a node's guard. A node blocks an address (an IPv4\n" +
	"address, an IPv6 /64 or /48) after 5 failed handshakes within 10 minutes (a wrong network\n" +
	"key), or 600 connections within an hour that never authenticate; blocks last 1 h, then 6 h,\n" +
	"then 24 h. Loopback is never blocked unless the node runs with --block-loopback.\n" +
	"Work on a running node through its admin listener (--admin), or on a stopped node's data\n" +
	"directory (--data). Lifted blocks stay lifted across restarts."

func runGuard(ctx context.Context, args []string, env *Env) error {
	if len(args) > 0 {
		switch args[0] {
		case "list":
			return runGuardList(ctx, args[1:], env)
		case "unblock":
			return runGuardUnblock(ctx, args[1:], env)
		}
	}
	var f guardFlags
	fs := newFlagSet(env, "guard", "dt guard list|unblock (--data DATADIR | --admin ADDR) [--json] [ADDR|PREFIX|all]", guardAbout+"\n\n"+
		"  dt guard list      the blocks in force: prefix, reason, since, until, count\n"+
		"  dt guard unblock   lift the blocks of an address, a prefix, or all")
	f.register(fs)
	if err := fs.parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return fs.usageErrorf("missing list or unblock")
	}
	return fs.usageErrorf("unknown subcommand %q: want list or unblock", fs.Arg(0))
}

func runGuardList(ctx context.Context, args []string, env *Env) error {
	var f guardFlags
	fs := newFlagSet(env, "guard list", "dt guard list (--data DATADIR | --admin ADDR) [--json]", guardAbout+"\n\n"+
		"Prints each block in force: the prefix, the reason (auth_failures, connections or subnet),\n"+
		"since and until when, and the count (the first block of a prefix is 1; it sets the length).")
	f.register(fs)
	if err := fs.parse(args); err != nil {
		return err
	}
	if err := fs.wantArgs(0, ""); err != nil {
		return err
	}
	if err := f.check(fs); err != nil {
		return err
	}
	var blocks []dt.Block
	if f.admin != "" {
		var list guardList
		if err := adminCall(ctx, &f, http.MethodGet, guardPath, nil, &list); err != nil {
			return err
		}
		blocks = list.Blocks
	} else {
		s, err := openStoredBlocks(f.data, true)
		if err != nil {
			return err
		}
		blocks = s.Blocks()
		if err := s.Close(); err != nil {
			return err
		}
	}
	if f.json {
		return writeJSON(env.Stdout, guardList{Blocks: orEmpty(blocks)})
	}
	if len(blocks) == 0 {
		fmt.Fprintln(env.Stdout, "No address is blocked.")
		return nil
	}
	tw := tabwriter.NewWriter(env.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PREFIX\tREASON\tSINCE\tUNTIL\tCOUNT")
	for _, b := range blocks {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\n", b.Prefix, b.Reason, b.Since.Local().Format(time.DateTime),
			b.Until.Local().Format(time.DateTime), b.Count)
	}
	return tw.Flush()
}

func runGuardUnblock(ctx context.Context, args []string, env *Env) error {
	var f guardFlags
	fs := newFlagSet(env, "guard unblock", "dt guard unblock (--data DATADIR | --admin ADDR) [--json] ADDR|PREFIX|all", guardAbout+"\n\n"+
		"Lifts the blocks of ADDR (an IPv4 address, or the IPv6 /64 it lies in), of every address in\n"+
		"PREFIX (192.0.2.0/24, 2001:db8::/48), or all of them, and forgets their history: a later\n"+
		"block is a first one again, of an hour. An ADDR that is not blocked is an error; all with\n"+
		"nothing blocked is not.")
	f.register(fs)
	if err := fs.parse(args); err != nil {
		return err
	}
	if err := fs.wantArgs(1, "ADDR, PREFIX or all"); err != nil {
		return err
	}
	if err := f.check(fs); err != nil {
		return err
	}
	target, err := parseUnblockTarget(fs.Arg(0))
	if err != nil {
		return fs.usageErrorf("%v", err)
	}
	var lifted []dt.Block
	if f.admin != "" {
		body, err := json.Marshal(unblockRequest{Target: target.String()})
		if err != nil {
			return err
		}
		var res unblockResult
		if err := adminCall(ctx, &f, http.MethodPost, guardUnblockPath, body, &res); err != nil {
			return err
		}
		lifted = res.Lifted
	} else {
		s, err := openStoredBlocks(f.data, false)
		if err != nil {
			return err
		}
		lifted, err = lift(s, target)
		if cerr := s.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	if f.json {
		return writeJSON(env.Stdout, unblockResult{Lifted: orEmpty(lifted)})
	}
	if len(lifted) == 0 {
		fmt.Fprintln(env.Stdout, "No address was blocked.")
	}
	for _, b := range lifted {
		fmt.Fprintf(env.Stdout, "Lifted %s (%s, blocked since %s until %s)\n", b.Prefix, b.Reason,
			b.Since.Local().Format(time.DateTime), b.Until.Local().Format(time.DateTime))
	}
	return nil
}

// openStoredBlocks opens a stopped node's blocks, saying what to do instead when it runs.
func openStoredBlocks(dir string, readOnly bool) (*dt.StoredBlocks, error) {
	s, err := dt.OpenStoredBlocks(dir, readOnly)
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("data directory %s is in use by a running node%s: ask the node through its admin "+
			"listener instead, with --admin and the node's --admin address (such as --admin 127.0.0.1:9002), or stop it first",
			dir, holderOf(&lockedDir{dir: dir}))
	}
	return s, err
}

// adminCall sends a request to the guard routes of the admin listener at f.admin and decodes
// the JSON answer into out.
func adminCall(ctx context.Context, f *guardFlags, method, path string, body []byte, out any) error {
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	base := f.admin
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(base, "/")+path, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("--admin %s: %w", f.admin, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		var opErr *net.OpError
		if errors.As(err, &opErr) && opErr.Op == "dial" {
			return fmt.Errorf("no admin listener at %s (%v): is the node running, and is that its --admin address?", f.admin, opErr.Err)
		}
		return fmt.Errorf("admin listener %s: %w", f.admin, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("admin listener %s: %w", f.admin, err)
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "application/json" {
		// A node older than dt guard answers 404, or the redirector's dashboard page.
		return fmt.Errorf("admin listener %s does not serve %s (%s): does the node run an older dt?", f.admin, path, resp.Status)
	}
	var res unblockResult
	if resp.StatusCode != http.StatusOK {
		if json.Unmarshal(raw, &res) == nil && res.Error != "" {
			return errors.New(res.Error)
		}
		return fmt.Errorf("admin listener %s: %s", f.admin, resp.Status)
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("admin listener %s: %w", f.admin, err)
	}
	return nil
}
