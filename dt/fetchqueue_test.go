package dt

import (
	"context"
	"sync"
	"testing"
	"time"
)

func TestFetchQueue(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	q := newFetchQueue()
	for i := range maxFetchQueue {
		if !q.put(ctx, fetchJob{seq: uint64(i)}) {
			t.Fatal("put refused below the bound")
		}
	}
	// Full: put waits until a job is taken.
	put := make(chan bool)
	go func() { put <- q.put(ctx, fetchJob{seq: maxFetchQueue}) }()
	select {
	case <-put:
		t.Fatal("put did not wait on a full queue")
	case <-time.After(50 * time.Millisecond):
	}
	// Four takers, as a link runs, see every job once and in order per taker.
	var mu sync.Mutex
	seen := map[uint64]bool{}
	var wg sync.WaitGroup
	tctx, stop := context.WithCancel(ctx)
	defer stop()
	for range 4 {
		wg.Go(func() {
			last := int64(-1)
			for {
				j, ok := q.take(tctx)
				if !ok {
					return
				}
				if int64(j.seq) <= last {
					t.Errorf("job %d after %d", j.seq, last)
				}
				last = int64(j.seq)
				mu.Lock()
				if seen[j.seq] {
					t.Errorf("job %d taken twice", j.seq)
				}
				seen[j.seq] = true
				done := len(seen) == maxFetchQueue+1
				mu.Unlock()
				if done {
					stop()
				}
			}
		})
	}
	if !<-put {
		t.Fatal("put failed once there was room")
	}
	wg.Wait()
	if len(seen) != maxFetchQueue+1 {
		t.Fatalf("%d jobs taken, want %d", len(seen), maxFetchQueue+1)
	}
	// An ended context releases both sides.
	cancel()
	if _, ok := q.take(ctx); ok {
		t.Fatal("take on an empty queue returned a job after cancel")
	}
	for range maxFetchQueue {
		q.put(context.Background(), fetchJob{})
	}
	if q.put(ctx, fetchJob{}) {
		t.Fatal("put on a full queue succeeded after cancel")
	}
}
