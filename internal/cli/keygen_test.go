package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dt-cdn/dt/dt"
)

func TestKeygen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	r := run(t, "", "keygen", dir)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	modes := map[string]os.FileMode{dt.NetworkKeyFile: 0o600, dt.MasterKeyFile: 0o600, dt.MasterPubKeyFile: 0o644}
	printed := strings.Fields(r.stdout)
	if len(printed) != 3 {
		t.Fatalf("printed %q, want three paths", r.stdout)
	}
	for _, p := range printed {
		want, ok := modes[filepath.Base(p)]
		if !ok || filepath.Dir(p) != dir {
			t.Fatalf("printed unexpected path %q", p)
		}
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", p, fi.Mode().Perm(), want)
		}
		delete(modes, filepath.Base(p))
	}
	keys, err := dt.LoadKeys(dir)
	if err != nil || keys.Master == nil || len(keys.Masters) != 1 {
		t.Fatalf("LoadKeys: %+v, %v", keys, err)
	}
	before, _ := os.ReadFile(filepath.Join(dir, dt.NetworkKeyFile))

	r = run(t, "", "keygen", dir)
	if r.code != 1 || !strings.HasPrefix(r.stderr, "dt keygen: ") || r.stdout != "" {
		t.Fatalf("second keygen: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if after, _ := os.ReadFile(filepath.Join(dir, dt.NetworkKeyFile)); string(after) != string(before) {
		t.Fatal("second keygen changed network.key")
	}
}
