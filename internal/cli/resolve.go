package cli

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/dt-cdn/dt/dns/resolve"
	"github.com/dt-cdn/dt/dt"
	"github.com/dt-cdn/dt/nodehost"
)

// Exit codes of dt resolve beyond 0 (every node saw the same answer), 1 (failure) and 2 (usage).
const (
	exitDisagree  = 3 // nodes saw different answers: some node's view of the DNS is suspect
	exitNoVerdict = 4 // no disagreement, but some node failed to resolve, or fewer answered than --expect
)

// resolverFlags choose the resolver with which a node answers dt resolve: `dt node` and `dt dns`
// have them.
type resolverFlags struct {
	servers stringList
}

func (r *resolverFlags) register(fs *flagSet) {
	fs.Var(&r.servers, "resolver", "answer dt resolve with the recursive resolver at `ADDR` (host:port); repeatable (default: the nameservers of /etc/resolv.conf)")
}

// stub returns the resolver: the flags' servers, or the system's.
func (r *resolverFlags) stub() (*resolve.Stub, error) {
	if len(r.servers) > 0 {
		return &resolve.Stub{Servers: r.servers}, nil
	}
	return resolve.SystemStub("")
}

// responder builds the node's answering side of dt resolve. Without a usable resolver it returns
// nil and logs why: the node then runs without answering.
func (r *resolverFlags) responder(n *dt.Node, log *slog.Logger) *resolve.Responder {
	stub, err := r.stub()
	if err != nil {
		log.Warn("No resolver; this node will not answer dt resolve", slog.Any("err", err))
		return nil
	}
	resp, err := resolve.NewResponder(resolve.ResponderConfig{Node: n, Self: n.ID(), Lookup: stub.Lookup, Logger: log})
	if err != nil {
		log.Warn("Resolve responder not started", slog.Any("err", err))
		return nil
	}
	return resp
}

// role is the role of `dt node`: it answers dt resolve. Without a usable resolver the node runs
// without answering.
func (r *resolverFlags) role(h *nodehost.Host) (nodehost.Role, error) {
	resp := r.responder(h.Node(), h.Logger())
	if resp == nil {
		return nodehost.Role{}, nil
	}
	if err := h.Subscribe(resp); err != nil {
		return nodehost.Role{}, err
	}
	return nodehost.Role{Serve: func(ctx context.Context, ready func(nodehost.Serving) error) error {
		if err := ready(nodehost.Serving{}); err != nil {
			return err
		}
		return resp.Run(ctx)
	}}, nil
}

// resolveFlags are dt resolve's flags.
type resolveFlags struct {
	client  clientFlags
	qtype   string
	expect  int
	local   bool
	jsonOut bool
	rf      resolverFlags
}

func (r *resolveFlags) register(fs *flagSet) {
	f := &r.client
	fs.StringVar(&f.keys, "keys", "", "`DIR` of keys written by dt keygen (network.key is enough)")
	fs.Var(&f.peers, "peer", "reach the network through the node at `ADDR` (host:port); repeatable; required")
	fs.DurationVar(&f.timeout, "timeout", 5*time.Second, "collect answers for `DURATION`")
	fs.StringVar(&f.logLevel, "log-level", "warn", "log `LEVEL` of the transient node on stderr: debug, info, warn or error")
	fs.StringVar(&r.qtype, "type", "", "the record `TYPE` to ask: A, AAAA, MX, TXT, … (default A; also the second argument)")
	fs.IntVar(&r.expect, "expect", 0, "stop waiting once `N` nodes answered (this machine included), and fail with 4 if fewer did")
	fs.BoolVar(&r.local, "local", true, "also resolve on this machine and compare its answer")
	fs.BoolVar(&r.jsonOut, "json", false, "print the answers and the verdict as JSON")
	r.rf.register(fs)
}

// parse parses args into NAME and the query type, and checks the flags.
func (r *resolveFlags) parse(fs *flagSet, args []string) error {
	if err := fs.parse(args); err != nil {
		return err
	}
	if fs.NArg() < 1 || fs.NArg() > 2 {
		return fs.usageErrorf("want NAME and optionally TYPE")
	}
	if fs.NArg() == 2 {
		if r.qtype != "" && !strings.EqualFold(r.qtype, fs.Arg(1)) {
			return fs.usageErrorf("--type %s and TYPE %s disagree", r.qtype, fs.Arg(1))
		}
		r.qtype = fs.Arg(1)
	}
	if r.qtype == "" {
		r.qtype = "A"
	}
	if _, err := resolve.ParseQueryType(r.qtype); err != nil {
		return fs.usageErrorf("%v", err)
	}
	if err := r.client.check(fs); err != nil {
		return err
	}
	if r.expect < 0 {
		return fs.usageErrorf("--expect must not be negative")
	}
	return nil
}

func runResolve(ctx context.Context, args []string, env *Env) error {
	var f resolveFlags
	fs := newFlagSet(env, "resolve", "dt resolve --keys DIR --peer ADDR [--type TYPE] [--timeout 5s] [--expect N] [--local=false] [--resolver ADDR]... [--json] NAME [TYPE]",
		"Asks every node online, through signed dt messages, to resolve NAME (of TYPE, by default A)\n"+
			"with its own resolver, collects the answers for --timeout (or until --expect nodes\n"+
			"answered), and prints what each node saw and whether they agree. This machine's own view\n"+
			"is one of them unless --local=false. Run `dt resolve --type MX DOMAIN` before sending\n"+
			"mail, or ask TXT of a DKIM selector, to catch a spoofed answer. Answers are compared\n"+
			"without TTLs, as sorted record sets.\n"+
			"Exit status: 0 every node saw the same answer; 3 they disagree (the nodes outside the\n"+
			"majority are named); 4 no disagreement but a node failed to resolve or fewer than\n"+
			"--expect answered; 1 failure.")
	f.register(fs)
	if err := f.parse(fs, args); err != nil {
		return err
	}
	var stub *resolve.Stub
	if f.local {
		var err error
		if stub, err = f.rf.stub(); err != nil {
			return fmt.Errorf("this machine's resolver: %w (or --local=false)", err)
		}
	}
	req, answers, self, err := askNetwork(ctx, env, fs, &f, stub)
	if err != nil {
		return err
	}
	report := resolve.Compare(answers)
	if f.jsonOut {
		if err := writeJSON(env.Stdout, struct {
			Name    string           `json:"name"`
			Type    string           `json:"type"`
			Local   string           `json:"local_node,omitempty"`
			Answers []resolve.Answer `json:"answers"`
			Verdict resolve.Report   `json:"verdict"`
		}{req.Name, req.QType, self, answers, report}); err != nil {
			return err
		}
	} else {
		printResolve(env.Stdout, req, answers, report, self)
	}
	return resolveVerdict(req, answers, report, f.expect)
}

// askNetwork joins the network through a transient node, sends the request and gathers the
// answers, this machine's own among them when stub is set. self is this machine's node id when
// its answer is among them, and empty otherwise.
func askNetwork(ctx context.Context, env *Env, fs *flagSet, f *resolveFlags, stub *resolve.Stub) (req resolve.Request, answers []resolve.Answer, self string, err error) {
	var collector atomic.Pointer[resolve.Collector]
	t, ctx, err := openTransientWith(ctx, env, &f.client, transientOptions{lazy: true, event: func(ev dt.Event) {
		if c := collector.Load(); c != nil {
			c.HandleEvent(ev)
		}
	}})
	if err != nil {
		return req, nil, "", err
	}
	defer t.close()
	t.timeout, t.timeoutFlag = connectTimeout, ""
	connect, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	if err := t.n.WaitSynced(connect); err != nil {
		return req, nil, "", t.explain(connect, err)
	}
	if req, err = resolve.NewRequest(t.n.ID(), fs.Arg(0), f.qtype, rand.Reader, time.Now()); err != nil {
		return req, nil, "", fs.usageErrorf("%v", err)
	}
	c := resolve.NewCollector(req)
	collector.Store(c)
	if err := t.n.SendMessage(connect, req); err != nil {
		return req, nil, "", fmt.Errorf("send the request: %w", err)
	}
	cfg := resolve.GatherConfig{Node: t.n, Self: t.n.ID(), Timeout: f.client.timeout, Expect: f.expect, Resend: resendInterval}
	if stub != nil {
		cfg.Lookup, self = stub.Lookup, t.n.ID().String()
	}
	return req, resolve.Gather(ctx, c, cfg), self, nil
}

// resolveVerdict turns the comparison into dt resolve's exit status.
func resolveVerdict(req resolve.Request, answers []resolve.Answer, report resolve.Report, expect int) error {
	switch {
	case len(report.Groups) > 1:
		return &exitCodeError{code: exitDisagree, err: fmt.Errorf("%s %s: %d of %d nodes saw another answer than the majority", req.Name, req.QType, len(report.Dissent), len(answers)-len(report.Failed))}
	case len(answers) == 0:
		return &exitCodeError{code: exitNoVerdict, err: errors.New("no node answered")}
	case len(report.Failed) > 0:
		return &exitCodeError{code: exitNoVerdict, err: fmt.Errorf("%d nodes failed to resolve", len(report.Failed))}
	case expect > 0 && len(answers) < expect:
		return &exitCodeError{code: exitNoVerdict, err: fmt.Errorf("%d nodes answered, fewer than --expect %d", len(answers), expect)}
	}
	return nil
}

// connectTimeout bounds how long dt resolve waits to link to the network.
const connectTimeout = 30 * time.Second

// resendInterval is how often dt resolve repeats its request while it waits for answers.
const resendInterval = resolve.DefaultResend

// printResolve writes each node's answer and the verdict.
func printResolve(w io.Writer, req resolve.Request, answers []resolve.Answer, r resolve.Report, self string) {
	fmt.Fprintf(w, "%s %s: %d nodes answered\n", req.Name, req.QType, len(answers))
	for _, a := range answers {
		label := a.Node
		if a.Node == self {
			label += " (this machine)"
		}
		if a.Error != "" {
			fmt.Fprintf(w, "node %s: failed: %s\n", label, a.Error)
			continue
		}
		fmt.Fprintf(w, "node %s: %s, %d ms\n", label, a.Rcode, a.Millis)
		for _, rec := range a.Records {
			fmt.Fprintf(w, "    %s\n", rec)
		}
	}
	switch {
	case len(answers) == 0:
		fmt.Fprintln(w, "verdict: no answers")
	case r.Agree && len(r.Failed) == 0:
		fmt.Fprintf(w, "verdict: agree (%d nodes)\n", len(answers))
	case r.Agree:
		fmt.Fprintf(w, "verdict: the %d nodes that resolved agree; %d failed\n", len(r.Groups[0].Nodes), len(r.Failed))
	case r.Majority != nil:
		fmt.Fprintf(w, "verdict: DISAGREE: %d of %d nodes saw the majority's answer; these saw another: %s\n",
			len(r.Majority.Nodes), len(answers)-len(r.Failed), strings.Join(r.Dissent, ", "))
	default:
		fmt.Fprintf(w, "verdict: DISAGREE with no majority: %d different answers among %s\n", len(r.Groups), strings.Join(r.Dissent, ", "))
	}
}
