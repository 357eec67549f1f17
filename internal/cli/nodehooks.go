package cli

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/dt-cdn/dt/dt"
	"github.com/dt-cdn/dt/internal/nodehost"
)

// nodeHooks describe a role built on its node after the node opened, for dt redirector and
// dt dns, whose services are not yet built before their hosts run.
type nodeHooks struct {
	// event sees every event after it is logged, on the event goroutine.
	event func(dt.Event)
	// status fills the role's part of /status.
	status func(*nodehost.Status)
	// work runs once the node serves, until it returns or ctx ends; an error stops the node.
	// It is given the function that reports the node ready (see serves).
	work func(ctx context.Context, n *dt.Node, log *slog.Logger, up func(Serving) error) error
	// serves says that work opens listeners of its own (for visitors): the node is reported
	// ready (Env.NodeReady, --ready-file) only when work calls up with their addresses, so that
	// the report names every listener. Without it the node is reported ready before work starts,
	// and up does nothing.
	serves bool
	// config adjusts the node's configuration before it opens.
	config func(*dt.Config)
	// admin adds routes to the admin server.
	admin func(*http.ServeMux)
	// release is called once work has returned, or would have run: it settles whatever the
	// event hook waits for.
	release func()
}

// serveNode runs a node with hooks on a host, with the process's concerns around it.
func serveNode(ctx context.Context, env *Env, f *nodeFlags, hooks nodeHooks) error {
	p, cfg, err := newNodeProcess(env, f)
	if err != nil {
		return err
	}
	if hooks.config != nil {
		hooks.config(&cfg.Node)
	}
	return p.run(ctx, func(ctx context.Context) error {
		return nodehost.Run(ctx, cfg, func(h *nodehost.Host) (nodehost.Role, error) {
			if hooks.event != nil {
				if err := h.Subscribe(nodehost.EventFunc(hooks.event)); err != nil {
					return nodehost.Role{}, err
				}
			}
			return nodehost.Role{Routes: hooks.admin, Status: hooks.status, Serve: hooks.serve(h)}, nil
		})
	})
}

// serve adapts the hooks' work to a role's Serve.
func (hooks nodeHooks) serve(h *nodehost.Host) func(context.Context, func(nodehost.Serving) error) error {
	return func(ctx context.Context, ready func(nodehost.Serving) error) error {
		if hooks.release != nil {
			defer hooks.release()
		}
		up := func(s Serving) error {
			return ready(nodehost.Serving{HTTP: s.HTTP, HTTPS: s.HTTPS, PublicURL: s.PublicURL})
		}
		if !hooks.serves {
			if err := up(Serving{}); err != nil {
				return err
			}
			up = func(Serving) error { return nil }
		}
		if hooks.work == nil {
			return nil
		}
		return hooks.work(ctx, h.Node(), h.Logger(), up)
	}
}
