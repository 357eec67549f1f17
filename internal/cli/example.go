package cli

import (
	"context"
	"time"

	"github.com/dt-cdn/dt/internal/example"
)

// exampleFlags are dt example's flags.
type exampleFlags struct {
	basePort int
	duration time.Duration
	data     string
}

func runExample(ctx context.Context, args []string, env *Env) error {
	var f exampleFlags
	fs := newFlagSet(env, "example", "dt example [--base-port 7001] [--duration 0] [--data DIR]",
		"Runs the original five-node example in one process. node1 is a master with no listener\n"+
			"that dials node2; node2, node3 and node4 listen on 127.0.0.1 ports base to base+2 and node5\n"+
			"on [::1] port base+3; node3 and node5 dial node2, node4 dials node3. Once all have\n"+
			"started, every 2 s the master adds an object and removes the one added 3 rounds\n"+
			"earlier, and a random plain node sends a message. Every event of every node is printed\n"+
			"as one line, and for each add and message the time until every other node had it.")
	fs.IntVar(&f.basePort, "base-port", 7001, "first listening `PORT`; 0 lets the system pick every port")
	fs.DurationVar(&f.duration, "duration", 0, "stop after the rounds ran for `DURATION`; 0 runs until interrupted")
	fs.StringVar(&f.data, "data", "", "keep the nodes' data and keys in `DIR` across runs; empty: a temporary directory, removed")
	if err := fs.parse(args); err != nil {
		return err
	}
	if err := fs.wantArgs(0, ""); err != nil {
		return err
	}
	if f.basePort < 0 || f.basePort > 65535-3 {
		return fs.usageErrorf("--base-port %d out of range", f.basePort)
	}
	if f.duration < 0 {
		return fs.usageErrorf("--duration must not be negative")
	}
	return example.Run(ctx, example.Config{Out: env.Stdout, Dir: f.data, BasePort: f.basePort, Duration: f.duration})
}
