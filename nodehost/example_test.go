package nodehost_test

import (
	"context"
	"log/slog"
	"os"
	"os/signal"

	"github.com/dt-cdn/dt/dt"
	"github.com/dt-cdn/dt/nodehost"
)

// A plain node run from Go, as dt node runs one: it keeps the table, serves the admin listener
// on loopback, logs every event, and stops on an interrupt.
func ExampleRun() {
	keys, err := dt.LoadKeys("keys")
	if err != nil {
		slog.Error("Keys", slog.Any("err", err))
		return
	}
	// Zero timers and limits are dt's defaults.
	node := dt.Config{Keys: keys, DataDir: "data", Peers: []string{"192.0.2.1:7002"}}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	cfg := nodehost.Config{
		Node:   node,
		Admin:  "127.0.0.1:9002",
		Logger: slog.New(slog.NewTextHandler(os.Stderr, nil)),
	}
	plain := func(*nodehost.Host) (nodehost.Role, error) { return nodehost.Role{}, nil }
	if err := nodehost.Run(ctx, cfg, plain); err != nil {
		slog.Error("Node stopped", slog.Any("err", err))
	}
}
