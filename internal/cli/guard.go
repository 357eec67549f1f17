package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/dt-cdn/dt/dt"
	"github.com/dt-cdn/dt/internal/guardapi"
)

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
		var list guardapi.List
		if err := adminCall(ctx, &f, http.MethodGet, guardapi.Path, nil, &list); err != nil {
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
		return writeJSON(env.Stdout, guardapi.List{Blocks: guardapi.OrEmpty(blocks)})
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
	target, err := guardapi.ParseTarget(fs.Arg(0))
	if err != nil {
		return fs.usageErrorf("%v", err)
	}
	var lifted []dt.Block
	if f.admin != "" {
		body, err := json.Marshal(guardapi.UnblockRequest{Target: target.String()})
		if err != nil {
			return err
		}
		var res guardapi.UnblockResult
		if err := adminCall(ctx, &f, http.MethodPost, guardapi.UnblockPath, body, &res); err != nil {
			return err
		}
		lifted = res.Lifted
	} else {
		s, err := openStoredBlocks(f.data, false)
		if err != nil {
			return err
		}
		lifted, err = guardapi.Lift(s, target)
		if cerr := s.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	if f.json {
		return writeJSON(env.Stdout, guardapi.UnblockResult{Lifted: guardapi.OrEmpty(lifted)})
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
	var res guardapi.UnblockResult
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
