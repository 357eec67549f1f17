package dt

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Resync benchmarks: bytes on the wire when a node that was in sync at 100,000 objects comes back
// with 0, 10 or 1000 objects added meanwhile, by both sync paths: the log delta (the node still
// has its cursor) and set reconciliation (the cursor is gone). The original node-distributed-table
// sends its full hash list, about 6.7 MB per direction, every time. Run with
//
//	go test -run '^$' -bench BenchmarkResync -benchtime 1x ./dt/
//
// and read the bytes/op and ms/op columns.

var resyncObjects = envInt("DT_BENCH_OBJECTS", 100_000)

func addObjects(b testing.TB, m *testNode, from, to int) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	const chunk = 500
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for w := range 4 {
		wg.Go(func() {
			for start := from + w*chunk; start < to; start += 4 * chunk {
				objects := make([]any, 0, chunk)
				for i := start; i < min(start+chunk, to); i++ {
					objects = append(objects, map[string]int{"n": i})
				}
				if _, err := m.AddObjects(ctx, objects); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
}

func copyDir(b testing.TB, src, dst string) {
	err := filepath.Walk(src, func(path string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		target := filepath.Join(dst, rel)
		if info.IsDir() {
			return os.MkdirAll(target, 0o700)
		}
		in, err := os.Open(path)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, info.Mode())
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	})
	if err != nil {
		b.Fatal(err)
	}
}

func forgetCursors(b testing.TB, dir string) {
	db, err := bolt.Open(filepath.Join(dir, "dt.db"), 0o600, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error {
		if err := tx.DeleteBucket(bucketCursors); err != nil {
			return err
		}
		_, err := tx.CreateBucket(bucketCursors)
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
}

func BenchmarkResync(b *testing.B) {
	keys := testKeys(b)
	m := startNode(b, "master", keys, "", asMaster(), listenOn("127.0.0.1:0"))
	start := time.Now()
	addObjects(b, m, 0, resyncObjects)
	b.Logf("master wrote %d objects in %s", resyncObjects, time.Since(start).Round(time.Millisecond))

	template := b.TempDir()
	start = time.Now()
	first := startNode(b, "first", keys, template, peers(m.addr()))
	waitFor(b, 5*time.Minute, func() error {
		st := first.Status()
		if st.Objects != resyncObjects || len(st.Links) != 1 || st.Links[0].Cursor == 0 {
			return fmt.Errorf("%d objects, links %+v", st.Objects, st.Links)
		}
		return nil
	})
	in, out := first.WireBytes()
	b.Logf("initial sync of %d objects: %s, %d bytes received, %d sent", resyncObjects, time.Since(start).Round(time.Millisecond), in, out)
	first.stop()

	added := 0
	for _, diff := range []int{0, 10, 1000} {
		addObjects(b, m, resyncObjects+added, resyncObjects+diff)
		added = diff
		for _, mode := range []string{"delta", "reconcile"} {
			b.Run(mode+"/diff="+strconv.Itoa(diff), func(b *testing.B) {
				for b.Loop() {
					dir := b.TempDir()
					copyDir(b, template, dir)
					if mode == "reconcile" {
						forgetCursors(b, dir)
					}
					began := time.Now()
					n := startNode(b, "back", keys, dir, peers(m.addr()))
					waitFor(b, time.Minute, func() error {
						if st := n.Status(); !st.Synced || st.Objects != resyncObjects+diff {
							return fmt.Errorf("%d objects", st.Objects)
						}
						return nil
					})
					took := time.Since(began)
					in, out := n.WireBytes()
					b.Logf("sent by the returning node: %v; by the master so far: %v", frameBytes(n.Node), frameBytes(m.Node))
					n.stop()
					b.ReportMetric(float64(in+out), "bytes/op")
					b.ReportMetric(float64(took.Milliseconds()), "ms/op")
				}
			})
		}
	}
}

// frameBytes reports the control bytes a node sent, by frame type.
func frameBytes(n *Node) map[string]uint64 {
	out := map[string]uint64{}
	for typ := range n.metrics.frameBytesOut {
		if v := n.metrics.frameBytesOut[typ].Load(); v > 0 {
			out[frameType(typ).String()] = v
		}
	}
	return out
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// BenchmarkInitialSync measures a fresh node's sync of 30,000 small objects from a master, in
// one process (the dt loadtest command measures the same with real processes and fsync):
//
//	go test -run '^$' -bench BenchmarkInitialSync -benchtime 3x ./dt/
func BenchmarkInitialSync(b *testing.B) {
	objects := envInt("DT_BENCH_OBJECTS", 30_000)
	keys := testKeys(b)
	m := startNode(b, "master", keys, "", asMaster(), listenOn("127.0.0.1:0"))
	addObjects(b, m, 0, objects)
	for b.Loop() {
		n := startNode(b, "fresh", keys, "", peers(m.addr()))
		waitFor(b, 5*time.Minute, func() error {
			if got := n.Status().Objects; got != objects {
				return fmt.Errorf("%d objects", got)
			}
			return nil
		})
		n.stop()
	}
	b.ReportMetric(float64(objects)*float64(b.N)/b.Elapsed().Seconds(), "objects/s")
}

// BenchmarkLiveBurst measures objects/s from a master's AddObject calls until a linked node holds
// them all.
func BenchmarkLiveBurst(b *testing.B) {
	objects := envInt("DT_BENCH_OBJECTS", 30_000)
	keys := testKeys(b)
	n := startNode(b, "counter", keys, "", listenOn("127.0.0.1:0"))
	m := startNode(b, "master", keys, "", asMaster(), peers(n.addr()))
	total := 0
	for b.Loop() {
		addObjects(b, m, total, total+objects)
		total += objects
		waitFor(b, 5*time.Minute, func() error {
			if got := n.Status().Objects; got != total {
				return fmt.Errorf("%d objects", got)
			}
			return nil
		})
	}
	b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "objects/s")
}

// BenchmarkFiveNodeLatency measures, on the example's five-node topology, the time from
// AddObject on the (listener-less) master until all four other nodes hold the object, and from
// SendMessage on the farthest node until all four others delivered it. The original took 13.3 s
// for an add to reach five nodes.
//
//	go test -run '^$' -bench BenchmarkFiveNodeLatency -benchtime 50x ./dt/
func BenchmarkFiveNodeLatency(b *testing.B) {
	keys := testKeys(b)
	n2 := startNode(b, "n2", keys, "", listenOn("127.0.0.1:0"))
	n3 := startNode(b, "n3", keys, "", listenOn("127.0.0.1:0"), peers(n2.addr()))
	n4 := startNode(b, "n4", keys, "", listenOn("127.0.0.1:0"), peers(n3.addr()))
	n5 := startNode(b, "n5", keys, "", listenOn("[::1]:0"), peers(n2.addr()))
	m := startNode(b, "master", keys, "", asMaster(), peers(n2.addr()))
	plain := []*testNode{n2, n3, n4, n5}
	waitFor(b, 10*time.Second, func() error {
		for _, n := range plain {
			if n.Status().Peers == 0 {
				return fmt.Errorf("%s not linked", n.name)
			}
		}
		return nil
	})
	ctx := context.Background()
	var addTotal, msgTotal time.Duration
	for i := 0; b.Loop(); i++ {
		start := time.Now()
		id, err := m.AddObject(ctx, map[string]int{"latency": i})
		if err != nil {
			b.Fatal(err)
		}
		for !(n2.Has(id) && n3.Has(id) && n4.Has(id) && n5.Has(id)) {
			time.Sleep(50 * time.Microsecond)
		}
		addTotal += time.Since(start)

		before := make([]int, 4)
		for j, n := range []*testNode{m, n2, n3, n5} {
			before[j] = len(n.eventsOf(EventMessageReceived))
		}
		start = time.Now()
		if err := n4.SendMessage(ctx, map[string]int{"ping": i}); err != nil {
			b.Fatal(err)
		}
		for j, n := range []*testNode{m, n2, n3, n5} {
			for len(n.eventsOf(EventMessageReceived)) == before[j] {
				time.Sleep(50 * time.Microsecond)
			}
		}
		msgTotal += time.Since(start)
	}
	b.ReportMetric(float64(addTotal.Microseconds())/float64(b.N)/1000, "add-ms")
	b.ReportMetric(float64(msgTotal.Microseconds())/float64(b.N)/1000, "msg-ms")
}
