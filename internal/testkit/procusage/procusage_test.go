package procusage

import (
	"net"
	"testing"
	"time"
)

// Descriptors and goroutines opened after a first measure show in the next, and Settle returns
// once they are gone.
func TestNowAndSettle(t *testing.T) {
	before := Now(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-stop
	}()
	during := Now(t)
	if during.FDs <= before.FDs || during.Goroutines <= before.Goroutines {
		t.Errorf("a listener and a goroutine later: %v, before %v", during, before)
	}
	go func() {
		time.Sleep(200 * time.Millisecond)
		ln.Close()
		close(stop)
	}()
	after := Settle(t, before, 0, 5*time.Second, nil)
	<-done
	t.Logf("before %v; during %v; after %v", before, during, after)
}
