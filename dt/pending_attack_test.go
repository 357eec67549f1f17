package dt

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	runtimemetrics "runtime/metrics"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dt-cdn/dt/dt/internal/hlc"
)

// floodLog writes into a closed node's data directory, as its own records, count records signed
// by signers in turn (each trusted by that node alone), with bodies of size bytes, and returns
// the directory and the node's keys. Opened again with a peer, the node streams them all at once.
func floodLog(t *testing.T, keys Keys, signers []ed25519.PrivateKey, count, size int) (string, Keys) {
	t.Helper()
	dir := t.TempDir()
	fk := keys
	fk.Master = signers[0]
	fk.Masters = slices.Clone(keys.Masters) // it takes the network's records, so that it keeps its link
	for _, s := range signers {
		fk.Masters = append(fk.Masters, s.Public().(ed25519.PublicKey))
	}
	x := startNode(t, "flooder", fk, dir, asMaster())
	now := hlc.FromTime(time.Now())
	body := []byte(`"` + strings.Repeat("f", size-2) + `"`)
	done := make(chan applyResult, count)
	for i := range count {
		rec := signedRecord(x.Node, signers[i%len(signers)], KindPut, fmt.Sprintf("site/blog/f%d", i), body, now+hlc.Timestamp(i))
		if err := x.submit(t.Context(), applyOp{rec: rec, id: rec.ID(), body: body, done: done}); err != nil {
			t.Fatal(err)
		}
	}
	for range count {
		if res := <-done; res.err != nil || !res.applied {
			t.Fatalf("flooder's own log: %+v", res)
		}
	}
	x.stop()
	x.forget()
	return dir, fk
}

// forget drops the events a stopped node recorded: a flooder's hold every body it wrote, which
// would count in the heap measured for the relay.
func (tn *testNode) forget() {
	tn.mu.Lock()
	tn.events, tn.times = nil, nil
	tn.mu.Unlock()
}

// pendingPeak samples a node's pending set and the process's heap until stop is called, and
// returns the largest pending count and bytes it saw, and the largest heap (live objects and
// garbage not yet collected).
func pendingPeak(n *testNode) (stop func() (count, bytes int64, heap uint64)) {
	var (
		wg             sync.WaitGroup
		quit           = make(chan struct{})
		maxCnt, maxByt int64
		maxHeap        uint64
	)
	sample := []runtimemetrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	wg.Go(func() {
		for {
			maxCnt = max(maxCnt, n.pendingCount.Load())
			maxByt = max(maxByt, n.pendingBytes.Load())
			runtimemetrics.Read(sample)
			maxHeap = max(maxHeap, sample[0].Value.Uint64())
			select {
			case <-quit:
				return
			case <-time.After(100 * time.Microsecond):
			}
		}
	})
	return func() (int64, int64, uint64) {
		close(quit)
		wg.Wait()
		return maxCnt, maxByt, maxHeap
	}
}

// TestPendingFloodBounded: a peer holding the network key streams records signed by 64 keys
// nobody granted, more than MaxPendingRecords of small ones, then more than MaxPendingBytes of
// large ones. The relay keeps at most the bounds, counts what it drops, answers with at most its
// verdict budget, drops the flooder once its log is in (the records are forged), and meanwhile
// keeps serving its other peers: the master's write through it reaches the node behind it. The
// heap before and after is logged.
func TestPendingFloodBounded(t *testing.T) {
	keys := testKeys(t)
	signers := make([]ed25519.PrivateKey, 64)
	for i := range signers {
		signers[i] = newKey(t)
	}
	small, fk := floodLog(t, keys, signers, MaxPendingRecords+1000, 64)
	large, _ := floodLog(t, keys, signers, 2*MaxPendingBytes/(12<<10), 12<<10)

	relay := startNode(t, "relay", keys, "", listenOn("127.0.0.1:0"))
	far := startNode(t, "far", keys, "", peers(relay.addr()))
	master := startNode(t, "master", keys, "", asMaster(), peers(relay.addr()))
	ctx := ctxTimeout(t, 60*time.Second)
	if err := master.WaitSynced(ctx); err != nil {
		t.Fatal(err)
	}
	heapBefore := heapInUse()
	peak := pendingPeak(relay)
	for i, dir := range []string{small, large} {
		forged := forgedCount(relay)
		x := startNode(t, fmt.Sprint("flooder", i), fk, dir, asMaster(), peers(relay.addr()), dialFrom(fmt.Sprintf("127.0.0.%d", 20+i)))
		if err := master.Put(ctx, fmt.Sprintf("during/%d", i), []byte(`1`)); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 60*time.Second, func() error {
			if !far.Has(fmt.Sprintf("during/%d", i)) {
				return errors.New("the master's write has not reached far")
			}
			if forgedCount(relay) == forged {
				return errors.New("the relay has not refused the flood as forged")
			}
			return nil
		})
		x.stop()
		x.forget()
	}
	count, size, heapPeak := peak()
	dropped := counterValue(t, relay.metrics.pendingDropped)
	sent := counterValue(t, relay.metrics.verdictsSent.WithLabelValues("pending")) + counterValue(t, relay.metrics.verdictsSent.WithLabelValues("refused"))
	t.Logf("pending peak %d records, %d bytes; %v dropped; %v verdicts sent, %v over the budget",
		count, size, dropped, sent, counterValue(t, relay.metrics.verdictsDropped))
	if count > MaxPendingRecords || size > MaxPendingBytes {
		t.Errorf("pending peaked at %d records, %d bytes; bounds %d, %d", count, size, MaxPendingRecords, MaxPendingBytes)
	}
	if dropped < 1000 {
		t.Errorf("dt_records_pending_dropped_total %v: the bound was not reached", dropped)
	}
	if counterValue(t, relay.metrics.verdictsDropped) == 0 {
		t.Error("every verdict of the flood was sent: the budget did not hold")
	}
	if n := relay.pendingCount.Load(); n != 0 {
		t.Errorf("%d records still pending after the flooders' records were refused", n)
	}
	heapAfter := heapInUse()
	t.Logf("heap (live, after GC) %.1f MiB before the floods, %.1f MiB after; at most %.1f MiB during them (live and garbage; the test process holds four nodes)",
		float64(heapBefore)/(1<<20), float64(heapAfter)/(1<<20), float64(heapPeak)/(1<<20))
}

// forgedCount counts the forged records the node reported.
func forgedCount(n *testNode) int {
	count := 0
	for _, ev := range n.eventsOf(EventError) {
		if errors.Is(ev.Err, ErrForged) {
			count++
		}
	}
	return count
}
