package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/dt-cdn/dt/dt"
)

type loadtestFlags struct {
	objects    int
	mode       string
	dir        string
	objectSize int
	writers    int
	batch      int
	timeout    time.Duration
	logCap     int64
	json       bool
	noSync     bool
}

// loadPoll is how often the parent reads both nodes' counts, and loadStable how many polls in a
// row the total must stay unchanged before the test stops: the original's stop rule.
const (
	loadPoll   = 500 * time.Millisecond
	loadStable = 3
)

func runLoadtest(ctx context.Context, args []string, env *Env) error {
	var f loadtestFlags
	fs := newFlagSet(env, "loadtest", "dt loadtest [--objects 10000] [--mode burst|initial] [--dir .] [--object-size 200] [flags]",
		"Runs the original two-node load test on loopback with two node processes (this binary,\n"+
			"re-executed). Node 1 is a master, node 2 a plain node. burst: node 1 links to node 2,\n"+
			"then adds the objects as fast as it can. initial: node 1 adds them alone, then node 2\n"+
			"starts and syncs from it. Each node logs to 1.log / 2.log in --dir, capped to the newest\n"+
			"--log-cap bytes. Both nodes' counts are printed every 500 ms; the test stops when the\n"+
			"total has not changed for 3 polls and prints throughput, losses, peak memory and bytes\n"+
			"on the link. It exits 1 if node 2 lacks any object.")
	fs.IntVar(&f.objects, "objects", 10000, "`N` objects to add")
	fs.StringVar(&f.mode, "mode", "burst", "`burst|initial`: live replication or initial sync")
	fs.StringVar(&f.dir, "dir", ".", "`DIR` for 1.log and 2.log")
	fs.IntVar(&f.objectSize, "object-size", 200, "approximate size of each object in `BYTES` of JSON")
	fs.IntVar(&f.writers, "writers", 8, "`N` goroutines adding objects on node 1")
	fs.IntVar(&f.batch, "batch", 256, "`N` objects per AddObjects call on node 1 (1: one AddObject call per object, as the original does)")
	fs.DurationVar(&f.timeout, "timeout", 10*time.Minute, "fail if the counts have not settled after `DURATION`")
	fs.Int64Var(&f.logCap, "log-cap", 10_000_000, "keep at most `BYTES` of each node's log")
	fs.BoolVar(&f.json, "json", false, "print the summary as JSON")
	fs.BoolVar(&f.noSync, "no-sync", false, "run the nodes without fsync, to measure replication rather than the disk")
	if err := fs.parse(args); err != nil {
		return err
	}
	if err := fs.wantArgs(0, ""); err != nil {
		return err
	}
	switch {
	case f.objects < 1:
		return fs.usageErrorf("--objects must be at least 1")
	case f.mode != "burst" && f.mode != "initial":
		return fs.usageErrorf("--mode %q is not burst or initial", f.mode)
	case f.objectSize < 16:
		return fs.usageErrorf("--object-size must be at least 16")
	case f.batch < 1:
		return fs.usageErrorf("--batch must be at least 1")
	case f.writers < 1:
		return fs.usageErrorf("--writers must be at least 1")
	case f.timeout <= 0:
		return fs.usageErrorf("--timeout must be positive")
	case f.logCap < 2:
		return fs.usageErrorf("--log-cap must be at least 2")
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find own binary: %w", err)
	}
	ctx, cancel := context.WithTimeoutCause(ctx, f.timeout, ErrTimeout)
	defer cancel()
	lt := &loadtest{env: env, f: &f, exe: exe, client: &http.Client{Timeout: 5 * time.Second}}
	return lt.run(ctx)
}

// loadtest is one run of the load test: the parent's side.
type loadtest struct {
	env    *Env
	f      *loadtestFlags
	exe    string
	tmp    string
	client *http.Client
	began  time.Time
}

// loadSummary is the result, printed as text or JSON.
type loadSummary struct {
	Objects          int     `json:"objects"`
	Mode             string  `json:"mode"`
	ObjectSize       int     `json:"object_size"`
	Fsync            bool    `json:"fsync"`
	Seconds          float64 `json:"seconds"`
	ObjectsPerSecond float64 `json:"objects_per_second"`
	Complete         bool    `json:"complete"`
	Node1Objects     int     `json:"node1_objects"`
	Node2Objects     int     `json:"node2_objects"`
	Lost             int     `json:"lost"`
	Node1PeakMB      float64 `json:"node1_peak_mb"`
	Node2PeakMB      float64 `json:"node2_peak_mb"`
	Node1AnonMB      float64 `json:"node1_anon_mb"`
	Node2AnonMB      float64 `json:"node2_anon_mb"`
	Node1AddSeconds  float64 `json:"node1_add_seconds"`
	Node2BytesIn     uint64  `json:"node2_link_bytes_received"`
	Node2BytesOut    uint64  `json:"node2_link_bytes_sent"`
	Node1Log         string  `json:"node1_log"`
	Node2Log         string  `json:"node2_log"`
}

func (lt *loadtest) run(ctx context.Context) (err error) {
	if lt.tmp, err = os.MkdirTemp("", "dt-loadtest-*"); err != nil {
		return fmt.Errorf("temporary directory: %w", err)
	}
	defer func() { err = errors.Join(err, os.RemoveAll(lt.tmp)) }()
	keys := filepath.Join(lt.tmp, "keys")
	if err := dt.GenerateKeys(keys, nil); err != nil {
		return err
	}
	if err := os.MkdirAll(lt.f.dir, 0o755); err != nil {
		return fmt.Errorf("log directory: %w", err)
	}
	lt.began = time.Now()
	n1, n2, start, err := lt.startNodes(ctx, keys)
	defer func() {
		err = errors.Join(err, n1.stop(), n2.stop())
	}()
	if err != nil {
		return err
	}
	final, err := lt.poll(ctx, n1, n2)
	if err != nil {
		return err
	}
	sum := lt.summarize(final, start, n1, n2)
	if err := lt.print(sum); err != nil {
		return err
	}
	if sum.Lost != 0 {
		return fmt.Errorf("node 2 holds %d of %d objects: %w", sum.Node2Objects, sum.Objects, ErrLost)
	}
	return nil
}

// startNodes starts both node processes in the mode's order and returns when both serve, with
// the instant the measured time starts from (zero in burst mode: node 1 reports it).
func (lt *loadtest) startNodes(ctx context.Context, keys string) (n1, n2 *loadChild, start time.Time, err error) {
	common := []string{"--keys", keys, "--admin", "127.0.0.1:0", "--local", "--profile-dir", lt.f.dir}
	if lt.f.noSync {
		common = append(common, "--no-sync")
	}
	node1 := slices.Concat([]string{"--master", "--data", filepath.Join(lt.tmp, "node1"),
		"--add", strconv.Itoa(lt.f.objects), "--object-size", strconv.Itoa(lt.f.objectSize),
		"--writers", strconv.Itoa(lt.f.writers), "--batch", strconv.Itoa(lt.f.batch)}, common)
	node2 := slices.Concat([]string{"--data", filepath.Join(lt.tmp, "node2"), "--expect", strconv.Itoa(lt.f.objects)}, common)
	log1, log2 := filepath.Join(lt.f.dir, "1.log"), filepath.Join(lt.f.dir, "2.log")
	if lt.f.mode == "burst" {
		if n2, err = startLoadChild(lt.exe, "node2", append(node2, "--listen", "127.0.0.1:0"), log2, lt.f.logCap); err != nil {
			return n1, n2, start, err
		}
		if len(n2.info.Listen) == 0 {
			return n1, n2, start, errors.New("node2 reported no listener")
		}
		n1, err = startLoadChild(lt.exe, "node1", append(node1, "--peer", n2.info.Listen[0]), log1, lt.f.logCap)
		return n1, n2, start, err
	}
	if n1, err = startLoadChild(lt.exe, "node1", append(node1, "--listen", "127.0.0.1:0"), log1, lt.f.logCap); err != nil {
		return n1, n2, start, err
	}
	if err := lt.waitAdded(ctx, n1); err != nil {
		return n1, n2, start, err
	}
	if len(n1.info.Listen) == 0 {
		return n1, n2, start, errors.New("node1 reported no listener")
	}
	start = time.Now()
	n2, err = startLoadChild(lt.exe, "node2", append(node2, "--peer", n1.info.Listen[0]), log2, lt.f.logCap)
	return n1, n2, start, err
}

// waitAdded polls node 1 until it has added every object (initial mode), printing progress.
func (lt *loadtest) waitAdded(ctx context.Context, n1 *loadChild) error {
	tick := time.NewTicker(loadPoll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("node 1 adding objects: %w", context.Cause(ctx))
		case <-n1.exited:
			return fmt.Errorf("node1: %w: %v", ErrChildExited, n1.waitErr)
		case <-tick.C:
		}
		s, err := lt.status(ctx, n1)
		if err != nil {
			fmt.Fprintf(lt.env.Stderr, "node1 status: %v\n", err)
			continue
		}
		fmt.Fprintf(lt.env.Stdout, "t=%.1fs node1=%d node2=-\n", time.Since(lt.began).Seconds(), s.Objects)
		if s.Load != nil && s.Load.AddsDoneUnixNano != 0 {
			return nil
		}
	}
}

// poll prints both counts every loadPoll and returns the last statuses once the total stayed
// the same loadStable polls in a row, after node 1 finished adding and node 2 linked.
func (lt *loadtest) poll(ctx context.Context, n1, n2 *loadChild) ([2]nodeStatus, error) {
	var last [2]nodeStatus
	tick := time.NewTicker(loadPoll)
	defer tick.Stop()
	var st settle
	linked := false
	for {
		select {
		case <-ctx.Done():
			return last, fmt.Errorf("counts still changing: %w", context.Cause(ctx))
		case <-n1.exited:
			return last, fmt.Errorf("node1: %w: %v", ErrChildExited, n1.waitErr)
		case <-n2.exited:
			return last, fmt.Errorf("node2: %w: %v", ErrChildExited, n2.waitErr)
		case <-tick.C:
		}
		s1, err1 := lt.status(ctx, n1)
		s2, err2 := lt.status(ctx, n2)
		if err := errors.Join(err1, err2); err != nil {
			fmt.Fprintf(lt.env.Stderr, "status: %v\n", err)
			st.observe(0, false)
			continue
		}
		last = [2]nodeStatus{s1, s2}
		fmt.Fprintf(lt.env.Stdout, "t=%.1fs node1=%d node2=%d\n", time.Since(lt.began).Seconds(), s1.Objects, s2.Objects)
		linked = linked || s2.Peers > 0
		began := linked && s1.Load != nil && s1.Load.AddsDoneUnixNano != 0
		if st.observe(s1.Objects+s2.Objects, began) {
			return last, nil
		}
	}
}

// settle is the stop rule: the total count stayed the same for loadStable polls in a row, counted
// only once the test is under way (node 1 done adding, node 2 linked), so an idle start is not
// mistaken for the end.
type settle struct {
	prev, same int
	seen       bool
}

// observe records one poll and reports whether the counts have settled.
func (s *settle) observe(total int, began bool) bool {
	switch {
	case !began:
		s.seen, s.same = false, 0
		return false
	case s.seen && total == s.prev:
		s.same++
	default:
		s.same = 0
	}
	s.prev, s.seen = total, true
	return s.same >= loadStable
}

func (lt *loadtest) status(ctx context.Context, c *loadChild) (nodeStatus, error) {
	var s nodeStatus
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+c.info.Admin+"/status", nil)
	if err != nil {
		return s, err
	}
	resp, err := lt.client.Do(req)
	if err != nil {
		return s, fmt.Errorf("%s: %w", c.name, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return s, fmt.Errorf("%s: status %s", c.name, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		return s, fmt.Errorf("%s: decode status: %w", c.name, err)
	}
	return s, nil
}

// summarize computes the figures: the rate is N over the time from the first add (burst) or
// node 2's start (initial) to node 2 holding all N, both as noted by the nodes themselves.
func (lt *loadtest) summarize(final [2]nodeStatus, start time.Time, n1, n2 *loadChild) loadSummary {
	s1, s2 := final[0], final[1]
	sum := loadSummary{
		Objects: lt.f.objects, Mode: lt.f.mode, ObjectSize: lt.f.objectSize, Fsync: !lt.f.noSync,
		Node1Objects: s1.Objects, Node2Objects: s2.Objects, Lost: lt.f.objects - s2.Objects,
		Node2BytesIn: s2.LinkBytesReceived, Node2BytesOut: s2.LinkBytesSent,
		Node1Log: n1.logPath, Node2Log: n2.logPath,
	}
	sum.Node1PeakMB, _ = peakMB(n1.cmd.Process.Pid)
	sum.Node2PeakMB, _ = peakMB(n2.cmd.Process.Pid)
	sum.Node1AnonMB, _ = statusMB(n1.cmd.Process.Pid, "RssAnon:")
	sum.Node2AnonMB, _ = statusMB(n2.cmd.Process.Pid, "RssAnon:")
	l1, l2 := s1.Load, s2.Load
	if l1 != nil && l1.FirstAddUnixNano != 0 && l1.AddsDoneUnixNano != 0 {
		sum.Node1AddSeconds = float64(l1.AddsDoneUnixNano-l1.FirstAddUnixNano) / 1e9
		if start.IsZero() {
			start = time.Unix(0, l1.FirstAddUnixNano)
		}
	}
	if l2 != nil && l2.CompleteUnixNano != 0 && !start.IsZero() {
		sum.Complete = true
		sum.Seconds = time.Unix(0, l2.CompleteUnixNano).Sub(start).Seconds()
		if sum.Seconds > 0 {
			sum.ObjectsPerSecond = float64(lt.f.objects) / sum.Seconds
		}
	}
	return sum
}

func (lt *loadtest) print(s loadSummary) error {
	if lt.f.json {
		return writeJSON(lt.env.Stdout, s)
	}
	w := lt.env.Stdout
	fmt.Fprintf(w, "objects:     %d (about %d bytes each)\n", s.Objects, s.ObjectSize)
	fmt.Fprintf(w, "mode:        %s, fsync %t\n", s.Mode, s.Fsync)
	if s.Complete {
		fmt.Fprintf(w, "objects/s:   %.0f (%d objects in %.3fs)\n", s.ObjectsPerSecond, s.Objects, s.Seconds)
	} else {
		fmt.Fprintf(w, "objects/s:   n/a (node 2 never held every object)\n")
	}
	fmt.Fprintf(w, "node1:       %d objects, added in %.3fs, peak memory %.1f MB (anonymous at the end: %.1f MB; the rest is file-backed: the mapped database and the program)\n", s.Node1Objects, s.Node1AddSeconds, s.Node1PeakMB, s.Node1AnonMB)
	fmt.Fprintf(w, "node2:       %d objects, peak memory %.1f MB (anonymous at the end: %.1f MB)\n", s.Node2Objects, s.Node2PeakMB, s.Node2AnonMB)
	fmt.Fprintf(w, "lost:        %d\n", s.Lost)
	fmt.Fprintf(w, "link bytes:  node2 received %d, sent %d\n", s.Node2BytesIn, s.Node2BytesOut)
	fmt.Fprintf(w, "logs:        %s %s\n", s.Node1Log, s.Node2Log)
	return nil
}

// peakMB reads a process's peak resident set size (VmHWM, proc(5)) in megabytes (10^6 bytes).
func peakMB(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("peak memory: %w", err)
	}
	return parseVmHWM(b)
}

// statusMB reads one "Name:   123 kB" line of /proc/<pid>/status in megabytes.
func statusMB(pid int, name string) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("memory: %w", err)
	}
	return parseStatusKB(b, name)
}

// parseVmHWM finds the "VmHWM:   123456 kB" line of /proc/<pid>/status.
func parseVmHWM(status []byte) (float64, error) { return parseStatusKB(status, "VmHWM:") }

// parseStatusKB finds a "Name:   123456 kB" line of /proc/<pid>/status, in megabytes.
func parseStatusKB(status []byte, name string) (float64, error) {
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		rest, ok := bytes.CutPrefix(sc.Bytes(), []byte(name))
		if !ok {
			continue
		}
		num, unit, _ := bytes.Cut(bytes.TrimSpace(rest), []byte(" "))
		kb, err := strconv.ParseUint(string(num), 10, 64)
		if err != nil || string(bytes.TrimSpace(unit)) != "kB" {
			return 0, fmt.Errorf("memory: malformed %s line %q", name, sc.Bytes())
		}
		return float64(kb) * 1024 / 1e6, nil
	}
	return 0, fmt.Errorf("memory: no %s line", name)
}
