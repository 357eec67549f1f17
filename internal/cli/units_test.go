package cli

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// unitDir holds the systemd units the packages install.
const unitDir = "../../packaging/systemd"

// unitSettings parses a unit file into its settings, continuation lines joined, comments
// dropped: key → values, in order.
func unitSettings(t *testing.T, path string) map[string][]string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	text := strings.ReplaceAll(string(raw), "\\\n", " ")
	out := map[string][]string{}
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "[") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("%s: not a setting: %q", path, line)
		}
		out[k] = append(out[k], strings.TrimSpace(v))
	}
	return out
}

// helpFlagsOf lists the flags `dt CMD --help` documents.
func helpFlagsOf(t *testing.T, cmd string) []string {
	t.Helper()
	r := run(t, "", cmd, "--help")
	if r.code != 0 {
		t.Fatalf("dt %s --help: exit %d", cmd, r.code)
	}
	var flags []string
	for _, line := range strings.Split(r.stdout, "\n") {
		if m := flagLine.FindStringSubmatch(line); m != nil {
			flags = append(flags, m[1])
		}
	}
	return flags
}

// TestUnitsStartAsShipped checks the systemd units against the commands: each runs /usr/bin/dt
// as user dt with flags the command takes; what a fresh machine may lack is optional (the
// settings file, the GeoIP directory), so the unit starts without it; the settings file the
// unit reads exists in packaging/default and sets only the variable the unit expands. When
// systemd-analyze is installed, it verifies each unit too.
func TestUnitsStartAsShipped(t *testing.T) {
	units, err := filepath.Glob(filepath.Join(unitDir, "*.service"))
	if err != nil || len(units) == 0 {
		t.Fatalf("no units in %s: %v", unitDir, err)
	}
	varRef := regexp.MustCompile(`^\$\{?([A-Z_]+)\}?$`)
	for _, path := range units {
		name := strings.TrimSuffix(filepath.Base(path), ".service")
		t.Run(name, func(t *testing.T) {
			s := unitSettings(t, path)
			if got := s["User"]; !slices.Equal(got, []string{"dt"}) {
				t.Errorf("User=%v, want dt", got)
			}
			exec := strings.Fields(strings.Join(s["ExecStart"], " "))
			if len(exec) < 2 || exec[0] != "/usr/bin/dt" {
				t.Fatalf("ExecStart=%v: want /usr/bin/dt COMMAND …", exec)
			}
			cmd := exec[1]
			known := helpFlagsOf(t, cmd)
			var vars []string
			for _, arg := range exec[2:] {
				switch {
				case strings.HasPrefix(arg, "--"):
					flag, _, _ := strings.Cut(strings.TrimPrefix(arg, "--"), "=")
					if !slices.Contains(known, flag) {
						t.Errorf("ExecStart passes --%s, which dt %s does not take", flag, cmd)
					}
				case varRef.MatchString(arg):
					vars = append(vars, varRef.FindStringSubmatch(arg)[1])
				}
			}
			envFiles := s["EnvironmentFile"]
			if len(vars) > 0 && len(envFiles) == 0 {
				t.Errorf("ExecStart expands %v but no EnvironmentFile sets them", vars)
			}
			for _, f := range envFiles {
				if !strings.HasPrefix(f, "-") {
					t.Errorf("EnvironmentFile=%s is required: a machine without it never starts the unit (write -%s)", f, f)
				}
				def, err := os.ReadFile(filepath.Join("../../packaging/default", filepath.Base(strings.TrimPrefix(f, "-"))))
				if err != nil {
					t.Errorf("no packaged settings file for %s: %v", f, err)
					continue
				}
				for _, line := range strings.Split(string(def), "\n") {
					if line == "" || strings.HasPrefix(line, "#") {
						continue
					}
					k, v, _ := strings.Cut(line, "=")
					if !slices.Contains(vars, k) {
						t.Errorf("%s sets %s, which the unit does not use", f, k)
					}
					if v != `""` {
						t.Errorf("%s ships %s=%s: the packaged file must leave every setting empty", f, k, v)
					}
				}
			}
			for _, paths := range s["ReadOnlyPaths"] {
				for _, p := range strings.Fields(paths) {
					if p != "/etc/dt" && !strings.HasPrefix(p, "-") {
						t.Errorf("ReadOnlyPaths %s is required: write -%s so that a machine without it still starts the unit", p, p)
					}
				}
			}
			verifyUnit(t, path)
		})
	}
}

// verifyUnit runs systemd-analyze verify on a copy of the unit whose binary is a stand-in (the
// check wants the executable to exist).
func verifyUnit(t *testing.T, path string) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Log("systemd-analyze is not installed: unit not verified by systemd")
		return
	}
	dir := t.TempDir()
	stand := filepath.Join(dir, "dt")
	if err := os.WriteFile(stand, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	unit := filepath.Join(dir, filepath.Base(path))
	if err := os.WriteFile(unit, []byte(strings.ReplaceAll(string(raw), "/usr/bin/dt", stand)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", "--man=no", unit).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify %s: %v\n%s", filepath.Base(path), err, out)
	}
}
