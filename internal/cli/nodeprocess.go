package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	bolterrors "go.etcd.io/bbolt/errors"
	"golang.org/x/time/rate"

	"github.com/dt-cdn/dt/dt"
	"github.com/dt-cdn/dt/internal/nodehost"
)

// nodeProcess is what a command that runs a role on the node host does around it as a process:
// the log on stderr, the heap profile on SIGUSR2, the pid file in the data directory, the ready
// file and Env.NodeReady.
type nodeProcess struct {
	env *Env
	f   *nodeFlags
	log *slog.Logger
	// pidWritten says the pid file is this process's, to remove at exit. Set on the host's
	// goroutine before the role reports readiness; read after the role returns.
	pidWritten bool
}

func newNodeProcess(env *Env, f *nodeFlags) (*nodeProcess, error) {
	log, err := newLogger(env.Stderr, f.logLevel, f.logFormat)
	if err != nil {
		return nil, err
	}
	log.Info("Starting", readBuildInfo().logAttrs()...)
	logDescriptorLimit(log)
	return &nodeProcess{env: env, f: f, log: log}, nil
}

// hostConfig turns the node's flags into the host's configuration, with the process's part: the
// pid file once the node holds its directory, readiness to the ready file and Env.NodeReady, and
// dt guard's routes on the admin listener.
func (p *nodeProcess) hostConfig() (nodehost.Config, error) {
	f := p.f
	keys, err := loadKeys(f.keys, f.master)
	if err != nil {
		return nodehost.Config{}, err
	}
	cfg := dt.Config{}
	if f.local {
		cfg = dt.LocalConfig()
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	cfg.Keys, cfg.Master, cfg.DataDir = keys, f.master, f.data
	cfg.Listen, cfg.Peers = f.listen, f.peers
	cfg.Logger, cfg.Registerer = p.log, reg
	cfg.NoSync = f.noSync
	if f.linkMessageRate > 0 {
		cfg.LinkMessageRate, cfg.LinkMessageBurst = rate.Limit(f.linkMessageRate), max(1, int(2*f.linkMessageRate))
	}
	cfg.NewOriginBurst = f.newOriginBurst
	cfg.Guard.MaxHandshakes, cfg.Guard.MaxHandshakesPerSubnet = f.maxHandshakes, f.subnetHandshake
	cfg.Guard.NeverBlock, cfg.Guard.BlockLoopback = f.neverBlock, f.blockLoopback
	return nodehost.Config{
		Node:     cfg,
		Admin:    f.admin,
		Logger:   p.log,
		Registry: reg,
		Build:    readBuildInfo(),
		Version:  readBuildInfo().short(),
		Opened:   p.opened,
		Ready:    p.announce,
		AdminRoutes: func(mux *http.ServeMux, n *dt.Node) {
			guardRoutes(mux, n, p.log)
		},
	}, nil
}

// opened records this process as the holder of the node's data directory.
func (p *nodeProcess) opened(*dt.Node) {
	if err := writePID(p.f.data); err != nil {
		p.log.Warn("Could not record this process in the data directory", slog.Any("err", err))
		return
	}
	p.pidWritten = true
}

// run runs a node's role with the heap-profile signal, and removes the pid and ready files once
// it has stopped. A data directory that another process holds is reported as such.
func (p *nodeProcess) run(ctx context.Context, role func(context.Context) error) (err error) {
	stopSignal := watchHeapSignal(p.f.profileDir, p.log)
	defer stopSignal()
	if p.f.readyFile != "" {
		// A ready file left by this run would tell a reader the node still serves.
		defer func() {
			if rerr := os.Remove(p.f.readyFile); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
				err = errors.Join(err, fmt.Errorf("remove ready file: %w", rerr))
			}
		}()
	}
	err = role(ctx)
	if p.pidWritten {
		removePID(p.f.data)
	}
	if errors.Is(err, bolterrors.ErrTimeout) {
		return &lockedDir{dir: p.f.data, err: err}
	}
	return err
}

// announce reports the node ready with every bound address: to the ready file and
// Env.NodeReady, in that order.
func (p *nodeProcess) announce(r nodehost.Ready) error {
	info := NodeInfo{ID: r.ID.String(), Listen: r.Listen, Admin: r.Admin, PID: os.Getpid(),
		Serving: Serving{HTTP: r.Serving.HTTP, HTTPS: r.Serving.HTTPS, PublicURL: r.Serving.PublicURL}}
	if p.f.readyFile != "" {
		if err := writeReadyFile(p.f.readyFile, info); err != nil {
			return err
		}
	}
	if p.env.NodeReady != nil {
		p.env.NodeReady(info)
	}
	return nil
}
