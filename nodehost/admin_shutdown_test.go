package nodehost

import (
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"
)

// TestAdminShutdownClosesLongRequests: a request still running after the shutdown grace (a live
// dashboard stream, say) is closed, and the shutdown is not a failure: a role stopped by SIGTERM
// exits 0 whatever its admin clients do.
func TestAdminShutdownClosesLongRequests(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	defer close(release)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		close(started)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	a, err := startAdmin("127.0.0.1:0", h, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	a.grace = 100 * time.Millisecond
	resp, err := http.Get("http://" + a.addr() + "/stream")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	<-started
	if err := a.shutdown(); err != nil {
		t.Fatalf("shutdown with a request past the grace: %v", err)
	}
	// The handler is still blocked (release is closed only when the test returns): the body
	// ends only because shutdown closed the connection.
	done := make(chan struct{})
	go func() { io.Copy(io.Discard, resp.Body); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the long request was not closed by the shutdown")
	}
}
