package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/dt-cdn/dt/internal/cappedlog"
)

// childReadyTimeout bounds how long a node process may take to report its addresses.
const childReadyTimeout = 30 * time.Second

// childStopGrace is how long a node process gets after SIGTERM before SIGKILL.
const childStopGrace = 5 * time.Second

// loadChild is one node process of the load test. Its stdout and stderr go to a capped log
// file; a goroutine waits for it from the start, so an early exit is noticed at once.
type loadChild struct {
	name    string
	cmd     *exec.Cmd
	info    NodeInfo
	log     *cappedlog.Writer
	logPath string
	exited  chan struct{} // closed once the process was waited for
	waitErr error         // set before exited closes
}

// startLoadChild runs `exe loadtest-node args...` and returns once it reported its addresses
// over an inherited pipe (descriptor 3 in the child).
func startLoadChild(exe, name string, args []string, logPath string, logCap int64) (*loadChild, error) {
	log, err := cappedlog.Create(logPath, logCap)
	if err != nil {
		return nil, err
	}
	r, w, err := os.Pipe()
	if err != nil {
		log.Close()
		return nil, fmt.Errorf("%s: ready pipe: %w", name, err)
	}
	defer r.Close()
	c := &loadChild{name: name, log: log, logPath: logPath, exited: make(chan struct{})}
	c.cmd = exec.Command(exe, append([]string{"loadtest-node", "--ready-fd", "3"}, args...)...)
	c.cmd.Stdout, c.cmd.Stderr = log, log
	c.cmd.ExtraFiles = []*os.File{w}
	setParentDeathSignal(c.cmd)
	err = c.cmd.Start()
	w.Close() // the child holds the only write end now: its exit ends our read with EOF
	if err != nil {
		log.Close()
		return nil, fmt.Errorf("%s: start: %w", name, err)
	}
	go func() {
		c.waitErr = c.cmd.Wait()
		close(c.exited)
	}()
	_ = r.SetReadDeadline(time.Now().Add(childReadyTimeout))
	if err := json.NewDecoder(r).Decode(&c.info); err != nil {
		return c, fmt.Errorf("%s: no ready report (see %s): %w", name, logPath, err)
	}
	if c.info.Admin == "" {
		return c, fmt.Errorf("%s: ready report without an admin address", name)
	}
	return c, nil
}

// stop sends SIGTERM, then SIGKILL after childStopGrace, waits for the process and closes its
// log. It reports an exit other than the clean one SIGTERM asks for. A nil child is a no-op.
func (c *loadChild) stop() error {
	if c == nil {
		return nil
	}
	select {
	case <-c.exited:
	default:
		_ = c.cmd.Process.Signal(syscall.SIGTERM)
		t := time.NewTimer(childStopGrace)
		select {
		case <-c.exited:
			t.Stop()
		case <-t.C:
			_ = c.cmd.Process.Kill()
			<-c.exited
		}
	}
	err := c.log.Close()
	if c.waitErr != nil {
		err = errors.Join(err, fmt.Errorf("%s: %w (see %s)", c.name, c.waitErr, c.logPath))
	}
	return err
}
