package proc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dt-cdn/dt/internal/cli"
)

// process is a child process of a test: one of the built commands with a directory of its own
// (its data, ready file and log), which the test can kill, stop and start again with the same
// arguments and data.
type process struct {
	name  string
	bin   string
	args  []string
	dir   string
	log   string // stdout and stderr of every run, appended
	ready string // the --ready-file path, when the command is given one

	runs int
	cur  *run // the latest run; nil before the first
}

// run is one execution of a process.
type run struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once the process exited and err is set
	err  error
}

// newProcess prepares a process named name (its directory is DIR/name, under the test's
// temporary directory); start runs it. The test's cleanup stops it with SIGTERM, expects a clean
// exit, and prints the log's tail if the test failed.
func newProcess(t *testing.T, root, name, bin string, args ...string) *process {
	t.Helper()
	dir := filepath.Join(root, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := &process{name: name, bin: bin, args: args, dir: dir, log: filepath.Join(dir, "log")}
	t.Cleanup(func() {
		if p.running() {
			if code, err := p.stop(); err != nil || code != 0 {
				t.Errorf("%s: exit %d on SIGTERM: %v", p.name, code, err)
			}
		}
		if t.Failed() {
			t.Logf("log of %s (last lines):\n%s", p.name, p.tail(60))
		}
	})
	return p
}

// withReadyFile adds --ready-file to the arguments, so that waitReady can read the addresses the
// process bound.
func (p *process) withReadyFile() *process {
	p.ready = filepath.Join(p.dir, "ready.json")
	p.args = append(p.args, "--ready-file", p.ready)
	return p
}

// start runs the process in the background.
func (p *process) start(t *testing.T) {
	t.Helper()
	if p.running() {
		t.Fatalf("%s is already running", p.name)
	}
	if p.ready != "" {
		// A killed run leaves its ready file: only the new run's may count.
		if err := os.Remove(p.ready); err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
	}
	logf, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close() // the child holds its own copy
	p.runs++
	fmt.Fprintf(logf, "=== run %d: %s %s\n", p.runs, filepath.Base(p.bin), strings.Join(p.args, " "))
	cmd := exec.Command(p.bin, p.args...)
	cmd.Dir, cmd.Env = p.dir, childEnv()
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", p.name, err)
	}
	r := &run{cmd: cmd, done: make(chan struct{})}
	go func() {
		r.err = cmd.Wait()
		close(r.done)
	}()
	p.cur = r
}

// childEnv is the test's environment without the variables dt commands read for defaults, so
// that only the arguments configure them.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DT_") {
			env = append(env, kv)
		}
	}
	return env
}

// running reports whether the latest run has not exited.
func (p *process) running() bool {
	if p.cur == nil {
		return false
	}
	select {
	case <-p.cur.done:
		return false
	default:
		return true
	}
}

// waitReady waits until the process wrote its ready file, and returns what it says.
func (p *process) waitReady(t *testing.T, timeout time.Duration) cli.NodeInfo {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		b, err := os.ReadFile(p.ready)
		if err == nil {
			var info cli.NodeInfo
			if err := json.Unmarshal(b, &info); err != nil {
				t.Fatalf("%s: ready file: %v", p.name, err)
			}
			if info.PID != p.cur.cmd.Process.Pid {
				t.Fatalf("%s: ready file names pid %d, the process is %d", p.name, info.PID, p.cur.cmd.Process.Pid)
			}
			return info
		}
		if !p.running() {
			t.Fatalf("%s exited before it was ready (%v):\n%s", p.name, p.cur.err, p.tail(40))
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready after %s:\n%s", p.name, timeout, p.tail(40))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill sends SIGKILL, the way a crash or an OOM kill ends a process, and waits for the exit.
func (p *process) kill(t *testing.T) {
	t.Helper()
	if err := p.cur.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("kill -9 %s: %v", p.name, err)
	}
	select {
	case <-p.cur.done:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s did not die of SIGKILL", p.name)
	}
}

// stop sends SIGTERM and waits up to 20 s for the exit, then kills; it returns the exit code.
func (p *process) stop() (int, error) {
	if err := p.cur.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return -1, err
	}
	t := time.NewTimer(20 * time.Second)
	defer t.Stop()
	select {
	case <-p.cur.done:
	case <-t.C:
		p.cur.cmd.Process.Kill()
		<-p.cur.done
		return -1, errors.New("still running 20 s after SIGTERM; killed")
	}
	return p.cur.cmd.ProcessState.ExitCode(), nil
}

// tail returns the last n lines of the process's log.
func (p *process) tail(n int) string {
	b, err := os.ReadFile(p.log)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

// logContains reports whether the process's log holds s.
func (p *process) logContains(s string) bool {
	b, err := os.ReadFile(p.log)
	return err == nil && bytes.Contains(b, []byte(s))
}

// command is a finished run of a command.
type command struct {
	code           int
	stdout, stderr string
	took           time.Duration
}

// runCommand runs a command to completion (bounded by timeout) in dir, and returns its outcome.
func runCommand(t *testing.T, timeout time.Duration, dir, bin string, args ...string) command {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir, cmd.Env = dir, childEnv()
	cmd.SysProcAttr = sysProcAttr()
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	began := time.Now()
	err := cmd.Run()
	c := command{stdout: out.String(), stderr: errOut.String(), took: time.Since(began)}
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit) && ctx.Err() == nil:
		c.code = exit.ExitCode()
	default:
		t.Fatalf("%s %s: %v\n%s", filepath.Base(bin), strings.Join(args, " "), err, errOut.String())
	}
	return c
}
