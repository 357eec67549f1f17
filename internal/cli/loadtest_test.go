package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestLoadtest runs the real load test: the test binary re-executes itself as the two node
// processes (see TestMain).
func TestLoadtest(t *testing.T) {
	if testing.Short() {
		t.Skip("starts node processes")
	}
	t.Setenv(childEnv, "1")
	t.Run("timeout", func(t *testing.T) {
		r := run(t, "", "loadtest", "--objects", "500", "--dir", t.TempDir(), "--no-sync", "--timeout", "200ms")
		if r.code != 1 || !strings.Contains(r.stderr, "timed out") {
			t.Fatalf("exit %d, stderr %s", r.code, r.stderr)
		}
	})
	for _, mode := range []string{"burst", "initial"} {
		t.Run(mode, func(t *testing.T) {
			dir := t.TempDir()
			r := run(t, "", "loadtest", "--objects", "500", "--mode", mode, "--dir", dir, "--no-sync",
				"--timeout", "90s", "--json", "--log-cap", "100000")
			if r.code != 0 {
				t.Fatalf("exit %d\nstderr: %s\nstdout: %s\n1.log:\n%s\n2.log:\n%s", r.code, r.stderr, r.stdout,
					logSummary(t, filepath.Join(dir, "1.log")), logSummary(t, filepath.Join(dir, "2.log")))
			}
			lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
			progress := regexp.MustCompile(`^t=\d+\.\ds node1=\d+ node2=(\d+|-)$`)
			for _, l := range lines[:len(lines)-1] {
				if !progress.MatchString(l) {
					t.Errorf("progress line %q", l)
				}
			}
			var s loadSummary
			if err := json.Unmarshal([]byte(lines[len(lines)-1]), &s); err != nil {
				t.Fatalf("summary %q: %v", lines[len(lines)-1], err)
			}
			if s.Objects != 500 || s.Mode != mode || s.Lost != 0 || s.Node1Objects != 500 || s.Node2Objects != 500 || !s.Complete {
				t.Errorf("summary %+v", s)
			}
			if s.ObjectsPerSecond <= 0 || s.Node1PeakMB <= 0 || s.Node2PeakMB <= 0 || s.Node2BytesIn < 500*200 {
				t.Errorf("figures missing: %+v", s)
			}
			for _, name := range []string{"1.log", "2.log"} {
				b, err := os.ReadFile(filepath.Join(dir, name))
				if err != nil {
					t.Fatal(err)
				}
				if len(b) == 0 || len(b) > 100000 {
					t.Errorf("%s holds %d bytes (cap 100000)", name, len(b))
				}
				if !strings.Contains(string(b), `msg="Node stopped"`) {
					t.Errorf("%s does not end with a clean stop:\n%s", name, b[max(0, len(b)-2000):])
				}
			}
		})
	}
}

// logSummary returns a node log without its event lines, shortened, to explain a failure.
func logSummary(t *testing.T, path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	var keep []string
	for _, l := range strings.Split(string(b), "\n") {
		if !strings.Contains(l, "msg=Event type=object_added") {
			keep = append(keep, l[:min(len(l), 300)])
		}
	}
	return strings.Join(keep[:min(len(keep), 40)], "\n")
}

func TestSettle(t *testing.T) {
	tests := []struct {
		name   string
		totals []int
		began  []bool
		stopAt int // index of the poll that stops; -1: never
	}{
		{"three unchanged polls after the first", []int{5, 5, 5, 5}, []bool{true, true, true, true}, 3},
		{"change resets", []int{5, 5, 6, 6, 6, 6}, []bool{true, true, true, true, true, true}, 5},
		{"idle before the start does not count", []int{0, 0, 0, 0, 0, 0}, []bool{false, false, false, true, true, true}, -1},
		{"idle then start", []int{0, 0, 0, 0, 0, 0, 0}, []bool{false, false, false, true, true, true, true}, 6},
		{"a failed poll resets", []int{5, 5, 5, 0, 5, 5, 5, 5}, []bool{true, true, true, false, true, true, true, true}, 7},
	}
	for _, tt := range tests {
		var s settle
		got := -1
		for i, total := range tt.totals {
			if s.observe(total, tt.began[i]) {
				got = i
				break
			}
		}
		if got != tt.stopAt {
			t.Errorf("%s: stopped at poll %d, want %d", tt.name, got, tt.stopAt)
		}
	}
}

func TestParseVmHWM(t *testing.T) {
	status := "Name:\tdt\nVmPeak:\t  900000 kB\nVmHWM:\t   51200 kB\nVmRSS:\t   40000 kB\n"
	mb, err := parseVmHWM([]byte(status))
	if err != nil || mb != 51200*1024/1e6 {
		t.Fatalf("parseVmHWM = %v, %v", mb, err)
	}
	for _, bad := range []string{"", "VmRSS:\t1 kB\n", "VmHWM:\tlots kB\n", "VmHWM:\t12 MB\n"} {
		if _, err := parseVmHWM([]byte(bad)); err == nil {
			t.Errorf("parseVmHWM(%q) succeeded", bad)
		}
	}
	// The real thing, for this process.
	if mb, err := peakMB(os.Getpid()); err != nil || mb <= 0 {
		t.Fatalf("peakMB(self) = %v, %v", mb, err)
	}
}

func FuzzParseVmHWM(f *testing.F) {
	f.Add([]byte("VmHWM:\t   51200 kB\n"))
	f.Add([]byte("Name: x\nVmHWM: 1 kB"))
	f.Add([]byte("VmHWM:"))
	f.Fuzz(func(t *testing.T, b []byte) {
		mb, err := parseVmHWM(b)
		if err == nil && mb < 0 {
			t.Fatalf("negative peak %v", mb)
		}
	})
}
