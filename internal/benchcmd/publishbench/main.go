// Command publishbench measures publishing a generated site to three edges on loopback, beside
// rsync -a --delete of the same tree to three local directories, in one run:
//
//	go run ./internal/benchcmd/publishbench --files 10000      # about 300 MB
//
// It reports the full publish (wall time, bytes the publisher put on the wire) and an
// incremental publish of one changed text file (bytes on the wire, time until every edge serves
// it), and the same two for rsync. Everything runs in one process on 127.0.0.1.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/dt-cdn/dt/dt"
	"github.com/dt-cdn/dt/edge"
	"github.com/dt-cdn/dt/nodehost"
	"github.com/dt-cdn/dt/publish"
	"github.com/dt-cdn/dt/site"
)

func main() {
	files := flag.Int("files", 10000, "files in the generated site (about 30 KB each on average)")
	level := flag.String("compression", "auto", "precompression level: auto, best or fast")
	profile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to `FILE`")
	flag.Parse()
	if *profile != "" {
		f, err := os.Create(*profile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "publishbench:", err)
			os.Exit(1)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, "publishbench:", err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	compression, err := publish.ParseCompression(*level)
	if err != nil {
		fmt.Fprintln(os.Stderr, "publishbench:", err)
		os.Exit(2)
	}
	if err := run(*files, compression); err != nil {
		fmt.Fprintln(os.Stderr, "publishbench:", err)
		os.Exit(1) // the profile of a failed run is of no use
	}
}

func run(files int, compression publish.Compression) error {
	tmp, err := os.MkdirTemp("", "publishbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	dir := filepath.Join(tmp, "site")
	total, err := generate(dir, files)
	if err != nil {
		return err
	}
	fmt.Printf("site: %d files, %.1f MB\n", files, float64(total)/1e6)

	keysDir := filepath.Join(tmp, "keys")
	if err := dt.GenerateKeys(keysDir, nil); err != nil {
		return err
	}
	keys, err := dt.LoadKeys(keysDir)
	if err != nil {
		return err
	}
	plain := keys
	plain.Master = nil
	net, err := startEdges(tmp, plain)
	if err != nil {
		return err
	}
	defer net.stop()
	b := &bench{dir: dir, compression: compression, edges: net,
		rsyncDirs: []string{filepath.Join(tmp, "r1"), filepath.Join(tmp, "r2"), filepath.Join(tmp, "r3")},
		opts: publish.NetworkOptions{Keys: keys, Peers: []string{net.hub}, HeartbeatInterval: 200 * time.Millisecond, Wait: 10 * time.Minute,
			CacheDir: filepath.Join(tmp, "publish-cache")}} // as dt publish keeps one
	if err := b.full(); err != nil {
		return err
	}
	return b.incremental()
}

// bench is one run's site, edges and rsync destinations.
type bench struct {
	dir         string
	compression publish.Compression
	edges       *edges
	rsyncDirs   []string
	opts        publish.NetworkOptions
}

// full publishes the whole site, then rsyncs it.
func (b *bench) full() error {
	start := time.Now()
	plan, err := publish.Scan(context.Background(), b.dir, publish.ScanOptions{Compression: b.compression})
	if err != nil {
		return err
	}
	firstScan := time.Since(start)
	res, err := publish.Publish(context.Background(), plan, b.opts)
	plan.Close()
	if err != nil {
		return err
	}
	fmt.Printf("dt full publish:        %s (scan %s at %s compression, upload and switch %s), %d blobs, %.1f MB of blobs, %.1f MB on the wire, live on %d/%d edges\n",
		time.Since(start).Round(time.Millisecond), firstScan.Round(time.Millisecond), plan.Compression, (time.Since(start) - firstScan).Round(time.Millisecond),
		res.BlobsSent, float64(res.BytesSent)/1e6, float64(res.WireBytes)/1e6, res.EdgesLive, len(res.Edges))
	t, sent, err := rsyncAll(b.dir, b.rsyncDirs)
	if err != nil {
		return err
	}
	fmt.Printf("rsync -a --delete x3:   %s, %.1f MB sent\n", t.Round(time.Millisecond), float64(sent)/1e6)
	return nil
}

// incremental changes one text file, publishes again, then rsyncs again.
func (b *bench) incremental() error {
	changed := filepath.Join(b.dir, "d000", "f00000.html")
	content := textContent(rand.New(rand.NewPCG(99, 1)), 30<<10)
	if err := os.WriteFile(changed, content, 0o644); err != nil {
		return err
	}
	enc, _ := zstd.NewWriter(nil)
	compressed := len(enc.EncodeAll(content, nil))
	start := time.Now()
	var served time.Duration
	var wg sync.WaitGroup
	var scanned time.Duration
	opts := b.opts
	opts.Scanned = func(plan *publish.Plan) {
		scanned = time.Since(start)
		id, _ := plan.Manifest.ID()
		upload := time.Now()
		wg.Go(func() { served = b.edges.waitServing(id, upload) })
	}
	// PublishDir links first, so unchanged files reuse the current deploy's variants.
	res, err := publish.PublishDir(context.Background(), b.dir, publish.ScanOptions{Compression: b.compression}, opts)
	wg.Wait()
	if err != nil {
		return err
	}
	fmt.Printf("dt one changed file:    %.1f KB on the wire (the file: %d bytes, %d zstd), %d blobs; every edge served it %s after the scan (the rescan took %s, reusing unchanged files' variants)\n",
		float64(res.WireBytes)/1e3, len(content), compressed, res.BlobsSent, served.Round(time.Millisecond), scanned.Round(time.Millisecond))
	t, sent, err := rsyncAll(b.dir, b.rsyncDirs)
	if err != nil {
		return err
	}
	fmt.Printf("rsync one changed file: %s, %.1f KB sent\n", t.Round(time.Millisecond), float64(sent)/1e3)
	return nil
}

// generate writes n files: 60% text (compressible, 5–60 KB), 40% binary (random, 10–80 KB).
func generate(dir string, n int) (int64, error) {
	r := rand.New(rand.NewPCG(1, 2))
	var total int64
	for i := range n {
		var b []byte
		name := fmt.Sprintf("f%05d.bin", i)
		if i%5 < 3 {
			b = textContent(r, 5<<10+r.IntN(55<<10))
			name = fmt.Sprintf("f%05d.html", i)
		} else {
			b = make([]byte, 10<<10+r.IntN(70<<10))
			for j := range b {
				b[j] = byte(r.Uint32())
			}
		}
		p := filepath.Join(dir, fmt.Sprintf("d%03d", i%100), name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return 0, err
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			return 0, err
		}
		total += int64(len(b))
	}
	return total, os.WriteFile(filepath.Join(dir, "index.html"), []byte("<h1>bench</h1>"), 0o644)
}

var words = strings.Fields("the edge serves a static site from blobs replicated over a signed table while the redirector sends visitors to the nearest live edge")

func textContent(r *rand.Rand, size int) []byte {
	var b bytes.Buffer
	for b.Len() < size {
		b.WriteString("<p>")
		for range 12 {
			b.WriteString(words[r.IntN(len(words))])
			b.WriteByte(' ')
		}
		b.WriteString("</p>\n")
	}
	return b.Bytes()
}

var sentRe = regexp.MustCompile(`Total bytes sent: ([\d,]+)`)

// rsyncAll copies src to every destination in turn, as an rsync fan-out would.
func rsyncAll(src string, dsts []string) (time.Duration, int64, error) {
	start := time.Now()
	var sent int64
	for _, d := range dsts {
		out, err := exec.Command("rsync", "-a", "--delete", "--stats", src+"/", d+"/").CombinedOutput()
		if err != nil {
			return 0, 0, fmt.Errorf("rsync: %w: %s", err, out)
		}
		if m := sentRe.FindSubmatch(out); m != nil {
			n, _ := strconv.ParseInt(strings.ReplaceAll(string(m[1]), ",", ""), 10, 64)
			sent += n
		}
	}
	return time.Since(start), sent, nil
}

// edges is three edges on loopback, each run by edge.Node's Run; the first one's node listens and
// the others, and the publisher, link to it.
type edges struct {
	hub    string
	edges  []*edge.Node
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func startEdges(tmp string, keys dt.Keys) (*edges, error) {
	ctx, cancel := context.WithCancel(context.Background())
	es := &edges{cancel: cancel}
	for i := range 3 {
		cfg := edge.Config{Host: nodehost.Config{Node: dt.Config{Keys: keys, DataDir: filepath.Join(tmp, fmt.Sprintf("edge%d", i)), NoSync: true}},
			HTTP: "127.0.0.1:0", HeartbeatInterval: 200 * time.Millisecond}
		if i == 0 {
			cfg.Host.Node.Listen = []string{"127.0.0.1:0"}
		} else {
			cfg.Host.Node.Peers = []string{es.hub}
		}
		ready, failed := make(chan nodehost.Ready, 1), make(chan error, 1)
		cfg.Host.Ready = func(r nodehost.Ready) error { ready <- r; return nil }
		e, err := edge.New(cfg)
		if err != nil {
			es.stop()
			return nil, err
		}
		es.edges = append(es.edges, e)
		es.wg.Go(func() {
			if err := e.Run(ctx); err != nil {
				failed <- err
			}
		})
		select {
		case r := <-ready:
			if i == 0 {
				es.hub = r.Listen[0]
			}
		case err := <-failed:
			es.stop()
			return nil, err
		}
	}
	return es, nil
}

// waitServing returns how long after since every edge switched to id.
func (es *edges) waitServing(id site.DeployID, since time.Time) time.Duration {
	for {
		all := true
		for _, e := range es.edges {
			all = all && e.Status().Active == id
		}
		if all {
			return time.Since(since)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// stop stops the edges; each drains first, as on SIGTERM.
func (es *edges) stop() {
	es.cancel()
	es.wg.Wait()
}
