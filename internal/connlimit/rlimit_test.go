//go:build unix

package connlimit

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
)

// childEnv makes the test binary run runChild instead of the tests.
const childEnv = "CONNLIMIT_TEST_CHILD"

// The runtime raises the soft limit at start; RaiseDescriptorLimit leaves it there.
func TestDescriptorLimitRaised(t *testing.T) {
	soft, hard, err := DescriptorLimit()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("RLIMIT_NOFILE soft %d, hard %d", soft, hard)
	if soft+1 < hard {
		t.Errorf("soft limit %d not raised towards the hard limit %d", soft, hard)
	}
	s2, h2, err := RaiseDescriptorLimit()
	if err != nil || s2 != soft || h2 != hard {
		t.Errorf("RaiseDescriptorLimit on a raised limit: %d, %d, %v; want %d, %d unchanged", s2, h2, err, soft, hard)
	}
}

// In a process whose soft limit was lowered to 256, the total cap follows the budget, and
// RaiseDescriptorLimit raises the limit back.
func TestCapFollowsDescriptorLimit(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "max 96") {
		t.Fatalf("child output %q, want max 96", out)
	}
}

func runChild() int {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		fmt.Println(err)
		return 1
	}
	low := lim
	low.Cur = 256
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
		fmt.Println(err)
		return 1
	}
	l, err := New(Config{MaxConns: 10000, FDReserve: 64})
	if err != nil {
		fmt.Println(err)
		return 1
	}
	fmt.Printf("max %d\n", l.Stats().Max)
	soft, hard, err := RaiseDescriptorLimit()
	if err != nil || soft != hard || hard != uint64(lim.Max) {
		fmt.Println("not raised:", soft, hard, err)
		return 1
	}
	return 0
}
