package proc

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// bins are the commands under test, built by TestMain before any test runs and only read after.
var bins struct {
	dt, publish string
}

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		os.Exit(m.Run()) // every test skips itself
	}
	dir, err := os.MkdirTemp("", "dt-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "proc:", err)
		os.Exit(1)
	}
	code := 1
	if err := build(dir); err != nil {
		fmt.Fprintln(os.Stderr, "proc:", err)
	} else {
		code = m.Run()
		if err := goleak.Find(); code == 0 && err != nil {
			fmt.Fprintln(os.Stderr, "proc: leaked goroutines:", err)
			code = 1
		}
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// build compiles ./cmd/dt and ./cmd/dt-publish into dir.
func build(dir string) error {
	goCmd, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("build the binaries: no go command on PATH: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goCmd, "build", "-o", dir+string(filepath.Separator),
		"github.com/dt-cdn/dt/cmd/dt", "github.com/dt-cdn/dt/cmd/dt-publish")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %w\n%s", err, out)
	}
	bins.dt, bins.publish = filepath.Join(dir, "dt"), filepath.Join(dir, "dt-publish")
	return nil
}

// skipShort skips tests that start processes under -short.
func skipShort(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts the built binaries as processes")
	}
}
