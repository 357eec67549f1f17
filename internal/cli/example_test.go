package cli

import (
	"regexp"
	"strings"
	"testing"
)

func TestExample(t *testing.T) {
	r := run(t, "", "example", "--base-port", "0", "--duration", "3s")
	if r.code != 0 {
		t.Fatalf("exit %d\nstderr: %s\nstdout: %s", r.code, r.stderr, r.stdout)
	}
	lines := strings.Split(r.stdout, "\n")
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
		t.Logf("output:\n%s", r.stdout)
	}
}
