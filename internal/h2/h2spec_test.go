package h2

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestH2spec runs the h2spec conformance suite (github.com/summerwind/h2spec), strict cases
// included, against a server over TLS on loopback. scripts/test.sh builds h2spec and names it
// in DT_H2SPEC; without it the test is skipped.
func TestH2spec(t *testing.T) {
	bin := os.Getenv("DT_H2SPEC")
	if bin == "" {
		t.Skip("DT_H2SPEC is not set (scripts/test.sh sets it)")
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "hello from h2\n")
	})
	ts := startServer(t, h, nil)
	_, port, _ := net.SplitHostPort(ts.addr)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "--tls", "--insecure", "--strict", "--host", "127.0.0.1", "--port", port, "--timeout", "2").CombinedOutput()
	if err != nil {
		t.Errorf("h2spec: %v", err)
	}
	summary := string(out)
	if i := strings.LastIndex(summary, "Failures:"); i >= 0 {
		summary = summary[i:]
	}
	if err != nil || testing.Verbose() {
		t.Log(summary)
	}
}
