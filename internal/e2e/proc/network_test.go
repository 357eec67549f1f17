package proc

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dt-cdn/dt/internal/cli"
	"github.com/dt-cdn/dt/internal/testkit/faultnet"
)

// readyTimeout bounds a process's start, up to its ready file.
const readyTimeout = 30 * time.Second

// network is a dt CDN of processes on loopback: a hub node that every other node dials, edges
// and a redirector; publishing goes through the hub too.
type network struct {
	dir   string
	keys  string
	hub   *process
	hubAt cli.NodeInfo
	edges []*edgeProc
	redir *process
	redAt cli.NodeInfo
	// http follows no redirect, so the test sees where the redirector sends a visitor. Its
	// connections are kept alive (hundreds of requests a second would otherwise exhaust the
	// ephemeral ports in TIME_WAIT) and closed at cleanup.
	http *http.Client
}

// edgeProc is a `dt edge` process.
type edgeProc struct {
	*process
	// at is what the edge's ready file said, replaced by restart while visitors read it (info).
	// Guarded by mu.
	mu sync.Mutex
	at cli.NodeInfo
	// link carries the edge's only link to the hub when the test may partition it; nil when the
	// edge dials the hub directly.
	link *faultnet.Proxy
}

// url is where visitors reach the edge, as its heartbeats tell the redirector.
func (e *edgeProc) url() string { return e.info().PublicURL }

// info is what the edge's ready file said when it last started.
func (e *edgeProc) info() cli.NodeInfo {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.at
}

// newNetwork generates keys and starts a hub node, with hubArgs added to its command line.
func newNetwork(t *testing.T, hubArgs ...string) *network {
	t.Helper()
	n := emptyNetwork(t)
	if c := runCommand(t, 30*time.Second, n.dir, bins.dt, "keygen", n.keys); c.code != 0 {
		t.Fatalf("dt keygen: exit %d: %s", c.code, c.stderr)
	}
	n.startHub(t, hubArgs...)
	return n
}

// emptyNetwork is a network with nothing started and no keys yet: its keys go in DIR/keys, and
// each process's data in DIR/<name>/data.
func emptyNetwork(t *testing.T) *network {
	n := &network{dir: t.TempDir(),
		http: &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	t.Cleanup(n.http.CloseIdleConnections)
	n.keys = filepath.Join(n.dir, "keys")
	return n
}

// startHub starts the hub node, with hubArgs added to its command line.
func (n *network) startHub(t *testing.T, hubArgs ...string) {
	t.Helper()
	args := append([]string{"node", "--keys", n.keys, "--data", "data",
		"--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--local"}, hubArgs...)
	n.hub = newProcess(t, n.dir, "hub", bins.dt, args...).withReadyFile()
	n.hub.start(t)
	n.hubAt = n.hub.waitReady(t, readyTimeout)
}

// hubAddr is the hub's peer listener.
func (n *network) hubAddr() string { return n.hubAt.Listen[0] }

// startEdge starts `dt edge` at location ("LAT,LON"), with extra added to its command line. With
// partitionable, its link to the hub goes through a faultnet proxy the test controls.
func (n *network) startEdge(t *testing.T, name, location string, partitionable bool, extra ...string) *edgeProc {
	t.Helper()
	e := &edgeProc{}
	peer := n.hubAddr()
	if partitionable {
		p, err := faultnet.New("127.0.0.1:0", peer)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Close() }) // after the edge stops: cleanups run last first
		e.link, peer = p, p.Addr()
	}
	// The drain wait is short so that stopping the network at the end takes no time; draining
	// itself is tested in internal/cli.
	e.process = newProcess(t, n.dir, name, bins.dt, "edge", "--keys", n.keys, "--data", "data",
		"--peer", peer, "--local", "--http", "127.0.0.1:0", "--admin", "127.0.0.1:0",
		"--location", location, "--drain-wait", "100ms")
	e.args = append(e.args, extra...)
	e.withReadyFile()
	e.start(t)
	at := e.waitReady(t, readyTimeout)
	e.mu.Lock()
	e.at = at
	e.mu.Unlock()
	// A restart keeps the ports, so the edge keeps its public URL, as a real edge does.
	for flag, addr := range map[string]string{"--http": at.HTTP, "--https": at.HTTPS} {
		if i := slices.Index(e.args, flag); i >= 0 {
			e.args[i+1] = addr
		}
	}
	n.edges = append(n.edges, e)
	return e
}

// restart starts an edge again with the same arguments and data directory.
func (e *edgeProc) restart(t *testing.T) {
	t.Helper()
	e.start(t)
	at, was := e.waitReady(t, readyTimeout), e.info()
	if at.PublicURL != was.PublicURL || at.ID != was.ID {
		t.Fatalf("%s restarted as %s at %s, was %s at %s", e.name, at.ID, at.PublicURL, was.ID, was.PublicURL)
	}
	e.mu.Lock()
	e.at = at
	e.mu.Unlock()
}

// startRedirector starts `dt redirector`.
func (n *network) startRedirector(t *testing.T) {
	t.Helper()
	n.redir = newProcess(t, n.dir, "redirector", bins.dt, "redirector", "--keys", n.keys, "--data", "data",
		"--peer", n.hubAddr(), "--local", "--http", "127.0.0.1:0", "--admin", "127.0.0.1:0").withReadyFile()
	n.redir.start(t)
	n.redAt = n.redir.waitReady(t, readyTimeout)
}

// publishResult is the part of dt publish's and dt rollback's --json summary the tests read.
type publishResult struct {
	Deploy    string `json:"deploy"`
	Previous  string `json:"previous"`
	Files     int    `json:"files"`
	BlobsSent int    `json:"blobs_sent"`
	BytesSent int64  `json:"bytes_sent"`
	Edges     []struct {
		URL    string `json:"url"`
		Live   bool   `json:"live"`
		Deploy string `json:"deploy"`
	} `json:"edges"`
	EdgesLive int `json:"edges_live"`

	took time.Duration
}

// publish runs dt-publish on the site and expects exit 0: the deploy is live on every edge that
// reported.
func (n *network) publish(t *testing.T, s siteGen) publishResult {
	t.Helper()
	dir := s.write(t, n.dir)
	return n.siteCommand(t, []string{bins.publish}, "--cache-dir", filepath.Join(n.dir, "publish-cache"), dir)
}

// rollback runs dt rollback (to the deploy before the current one) and expects exit 0.
func (n *network) rollback(t *testing.T) publishResult {
	t.Helper()
	return n.siteCommand(t, []string{bins.dt, "rollback"}, "--cache-dir", filepath.Join(n.dir, "publish-cache"))
}

// siteCommand runs a command that prints a publish summary with --json (cmd is the binary and
// its subcommand, if any) through the hub, and expects exit 0.
func (n *network) siteCommand(t *testing.T, cmd []string, args ...string) publishResult {
	t.Helper()
	args = append(append(cmd[1:len(cmd):len(cmd)], "--keys", n.keys, "--peer", n.hubAddr(), "--json", "--timeout", "30s"), args...)
	c := runCommand(t, time.Minute, n.dir, cmd[0], args...)
	name := filepath.Base(cmd[0]) + " " + strings.Join(args, " ")
	if c.code != 0 {
		t.Fatalf("%s: exit %d\n%s%s", name, c.code, c.stdout, c.stderr)
	}
	var r publishResult
	if err := json.Unmarshal([]byte(c.stdout), &r); err != nil {
		t.Fatalf("%s: %v\n%s", name, err, c.stdout)
	}
	r.took = c.took
	return r
}

// redirectorStatus is the part of the redirector's admin /status the tests read.
type redirectorStatus struct {
	Current string `json:"current_deploy"`
	Edges   []struct {
		Node string `json:"node"`
		Last struct {
			Seq    uint64 `json:"seq"`
			URL    string `json:"url"`
			Deploy string `json:"deploy"`
		} `json:"last"`
		State    string `json:"state"`
		Eligible bool   `json:"eligible"`
		Excluded string `json:"excluded"`
	} `json:"edges"`
}

// redirectorStatus reads the redirector's view of the network.
func (n *network) redirectorStatus() (redirectorStatus, error) {
	var st struct {
		Redirector *redirectorStatus `json:"redirector"`
	}
	if err := n.getJSON("http://"+n.redAt.Admin+"/status", &st); err != nil {
		return redirectorStatus{}, err
	}
	if st.Redirector == nil {
		return redirectorStatus{}, fmt.Errorf("redirector still starting")
	}
	return *st.Redirector, nil
}

// lastSeq is the sequence number of the edge's latest heartbeat the redirector holds, 0 if none.
func (st redirectorStatus) lastSeq(e *edgeProc) uint64 {
	for _, x := range st.Edges {
		if x.Node == e.info().ID {
			return x.Last.Seq
		}
	}
	return 0
}

// eligible reports whether the redirector would send visitors to the edge, and if not why.
func (st redirectorStatus) eligible(e *edgeProc) (bool, string) {
	for _, x := range st.Edges {
		if x.Node == e.info().ID {
			return x.Eligible, x.State + ", " + x.Excluded
		}
	}
	return false, "unknown to the redirector"
}

// nodeStatus is the part of a node's admin /status the tests read.
type nodeStatus struct {
	NodeID  string   `json:"node_id"`
	Peers   int      `json:"peers"`
	Blocked []string `json:"blocked"`
	Links   []struct {
		Peer string `json:"peer"`
	} `json:"links"`
	Edge *struct {
		Active string `json:"active"`
		Target string `json:"target"`
		Synced bool   `json:"synced"`
	} `json:"edge"`
}

func (n *network) nodeStatus(at cli.NodeInfo) (nodeStatus, error) {
	var st nodeStatus
	return st, n.getJSON("http://"+at.Admin+"/status", &st)
}

func (n *network) getJSON(url string, v any) error {
	resp, err := n.http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// get fetches url without following redirects; it returns the status, the Location and the body.
func (n *network) get(url string) (int, string, []byte, error) {
	resp, err := n.http.Get(url)
	if err != nil {
		return 0, "", nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, "", nil, err
	}
	return resp.StatusCode, resp.Header.Get("Location"), body, nil
}

// sitePath is the URL path of a site file.
func sitePath(p string) string { return (&url.URL{Path: "/" + p}).EscapedPath() }

// edgeOf returns the edge a Location points into, or nil.
func (n *network) edgeOf(location string) *edgeProc {
	for _, e := range n.edges {
		if strings.HasPrefix(location, e.url()+"/") {
			return e
		}
	}
	return nil
}

// checkServes checks that the edge serves every file of s, byte for byte.
func (n *network) checkServes(e *edgeProc, s siteGen) error {
	for p, want := range s.files {
		code, _, body, err := n.get(e.url() + sitePath(p))
		switch {
		case err != nil:
			return fmt.Errorf("%s: %w", e.name, err)
		case code != http.StatusOK:
			return fmt.Errorf("%s: GET %s: %d", e.name, p, code)
		case string(body) != string(want):
			return fmt.Errorf("%s: %s is not generation %d's (%d bytes, want %d; version.txt says %d)",
				e.name, p, s.n, len(body), len(want), n.servedGeneration(e))
		}
	}
	return nil
}

// servedGeneration is the generation of the site an edge serves, -1 if none.
func (n *network) servedGeneration(e *edgeProc) int {
	code, _, body, err := n.get(e.url() + "/version.txt")
	if err != nil || code != http.StatusOK {
		return -1
	}
	return generationOf(body)
}

// waitFor polls cond every 50 ms until it returns nil, or fails the test after timeout with
// cond's last error. It returns how long it waited.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() error) time.Duration {
	t.Helper()
	began := time.Now()
	for {
		err := cond()
		if err == nil {
			return time.Since(began)
		}
		if time.Since(began) > timeout {
			t.Fatalf("%s: not after %s: %v", what, timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// readAll reads and closes a response body.
func readAll(resp *http.Response) ([]byte, error) {
	defer resp.Body.Close()
	return io.ReadAll(resp.Body)
}
