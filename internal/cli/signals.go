package cli

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sync"
	"syscall"
	"time"
)

// signalContext returns a context cancelled by the first SIGINT or SIGTERM. Once it is
// cancelled the handlers are reset, so a second signal kills a process whose shutdown hangs.
func signalContext(parent context.Context) (context.Context, context.CancelFunc) {
	ctx, stop := signal.NotifyContext(parent, os.Interrupt, syscall.SIGTERM)
	unhook := context.AfterFunc(ctx, stop)
	return ctx, func() {
		unhook()
		stop()
	}
}

// watchHeapSignal writes a heap profile into dir each time the process gets SIGUSR2, until the
// returned stop function is called (stop waits for a profile being written). It is the
// counterpart of node's --heapsnapshot-signal=SIGUSR2 in the original load test.
func watchHeapSignal(dir string, log *slog.Logger) (stop func()) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGUSR2)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-ch:
				path, err := writeHeapProfile(dir)
				if err != nil {
					log.Error("Heap profile failed", slog.Any("err", err))
					continue
				}
				log.Info("Heap profile written", slog.String("path", path))
			case <-done:
				return
			}
		}
	})
	return func() {
		signal.Stop(ch)
		close(done)
		wg.Wait()
	}
}

// writeHeapProfile writes heap-<unix-nanos>.pprof into dir, in the gzipped protobuf format
// `go tool pprof` reads. A GC runs first so the profile shows live memory as of now rather than
// as of the last collection (the runtime/pprof documentation recommends it).
func writeHeapProfile(dir string) (string, error) {
	runtime.GC()
	path := filepath.Join(dir, fmt.Sprintf("heap-%d.pprof", time.Now().UnixNano()))
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return "", fmt.Errorf("heap profile: %w", err)
	}
	if err := pprof.WriteHeapProfile(f); err != nil {
		f.Close()
		return "", fmt.Errorf("heap profile %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("heap profile %s: %w", path, err)
	}
	return path, nil
}
