package example

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/dt-cdn/dt/internal/testkit/syncbuf"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestExample(t *testing.T) {
	var out syncbuf.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := Run(ctx, Config{Out: &out, Duration: 3 * time.Second}); err != nil {
		t.Fatalf("Run: %v\noutput: %s", err, out.String())
	}
	stdout := out.String()
	lines := strings.Split(stdout, "\n")
	has := func(re *regexp.Regexp) bool {
		for _, l := range lines {
			if re.MatchString(l) {
				return true
			}
		}
		return false
	}
	for _, node := range []string{"node1", "node2", "node3", "node4", "node5"} {
		for _, re := range []*regexp.Regexp{
			regexp.MustCompile(`^` + node + ` started$`),
			regexp.MustCompile(`^` + node + ` object_added [0-9a-f]{6}… \{"example":1,"time":"`),
			regexp.MustCompile(`^` + node + ` message_received from node[1-5] \{"from":"node[2-5]","message":[12],`),
		} {
			if !has(re) {
				t.Errorf("no line matches %s", re)
			}
		}
	}
	for _, re := range []*regexp.Regexp{
		regexp.MustCompile(`^add [0-9a-f]{6}… reached 4 nodes in `),
		regexp.MustCompile(`^message 1 from node[2-5] reached 4 nodes in `),
		regexp.MustCompile(`^adds: 2 reached every node; median `),
		regexp.MustCompile(`^messages: 2 reached every node; median `),
	} {
		if !has(re) {
			t.Errorf("no line matches %s", re)
		}
	}
	if t.Failed() {
		t.Logf("output:\n%s", stdout)
	}
}
