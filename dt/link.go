package dt

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/yamux"
	"golang.org/x/time/rate"

	"github.com/dt-cdn/dt/dt/internal/hlc"
	"github.com/dt-cdn/dt/dt/internal/ipguard"
	"github.com/dt-cdn/dt/dt/internal/rbsr"
	"github.com/dt-cdn/dt/dt/internal/securelink"
)

// A link is an authenticated, encrypted connection to one peer, multiplexed into streams: one
// control stream carries the sync protocol, the peer's log and flooded messages; every large body
// travels on a stream of its own, so a multi-megabyte object never delays a message, and yamux's
// keepalive pings never wait behind either. Links are symmetric: whoever dialed, both ends stream
// their log to the other.

// Queue bounds of a link's writer.
const (
	// closeGrace bounds how long a closing link waits for the peer to close its side.
	closeGrace = time.Second

	// msgQueueLen bounds flooded messages waiting for a slow peer, as Config.MessageQueueBytes
	// bounds their bytes. Messages are never dropped silently: a peer that falls this far behind
	// is disconnected (and resyncs on reconnect).
	msgQueueLen = 4096
	logQueueLen = 256
	// bodyFetchers is how many bodies one link fetches at once.
	bodyFetchers = 4
	// bodyStreamTimeout bounds one body transfer without progress.
	bodyStreamTimeout = 30 * time.Second
)

type link struct {
	n       *Node
	peer    NodeID
	peerKey ed25519.PublicKey
	hello   hello
	dialed  bool
	remote  net.Addr
	sess    *yamux.Session
	ctrl    net.Conn

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	needsAudit atomic.Bool                  // the peer sent a record signed by a key other than a master's
	ungranted  map[[32]byte]ungrantedRecord // guarded by mu: signers without a grant whose records were not kept, and a record of each

	ctrlOut       chan []byte      // sync protocol frames: senders block
	verdictOut    chan []byte      // verdicts on the peer's records: senders never block
	verdictBudget *rate.Limiter    // verdicts this node may send the peer (VerdictRate)
	msgOut        chan []byte      // flooded messages: senders never block
	msgOutBytes   atomic.Int64     // bytes in msgOut
	budget        *neighbourBudget // what the peer may flood to us
	logOut        chan []byte      // log entries from the tailer
	wants         chan []RecordID  // the peer's wants, served in order
	fetches       *fetchQueue

	tailOnce sync.Once

	writerDone chan struct{}
	readerDone chan struct{}
	ackKick    chan struct{} // wakes the writer to send frameAck
	ackOut     atomic.Uint64 // our committed cursor in the peer's log, to send
	acked      atomic.Uint64 // the peer's committed cursor in our log

	mu          sync.Mutex
	tracker     cursorTracker // guarded by mu
	caughtUp    bool          // guarded by mu: the peer's tail reached its head at least once
	wantPending int           // guarded by mu: records asked for and not yet applied
	wantsOpen   int           // guarded by mu: want frames not yet answered by frameWantDone
	recon       *reconcile    // guarded by mu: our reconciliation in progress, if any
	responder   *rbsr.Responder
	respHead    uint64
	syncing     bool // guarded by mu: a barrier for markSynced is in flight
	closeErr    error
	closed      atomic.Bool
}

type fetchJob struct {
	rec  *Record
	id   RecordID
	seq  uint64 // log sequence, or 0 for a record outside the log
	want bool   // counts against wantPending
}

// yamuxConfig returns the multiplexer settings for links.
func (n *Node) yamuxConfig() *yamux.Config {
	c := yamux.DefaultConfig()
	c.EnableKeepAlive = true
	c.KeepAliveInterval = n.cfg.KeepAliveInterval
	c.ConnectionWriteTimeout = n.cfg.LinkTimeout
	c.StreamOpenTimeout = n.cfg.LinkTimeout
	c.StreamCloseTimeout = n.cfg.LinkTimeout
	c.LogOutput = io.Discard
	return c
}

// runLink runs a connection from handshake to close. ticket is the address guard's ticket for an
// accepted connection (nil when we dialed). It returns why the link ended.
func (n *Node) runLink(raw net.Conn, dialed bool, ticket *ipguard.Ticket) error {
	sc, peer, ph, err := n.handshake(raw, dialed, ticket)
	if err != nil {
		return err
	}
	l := n.newLink(raw, dialed, peer, ph)
	if l.peer == n.id {
		sc.Close()
		return errSelfLink
	}
	if err := l.openSession(sc); err != nil {
		return err
	}
	l.ctx, l.cancel = context.WithCancel(n.ctx)
	l.budget = n.flood.neighbour(neighbourOf(l))
	if err := n.register(l); err != nil {
		l.sess.Close()
		return err
	}
	n.clock.Observe(hlc.Timestamp(ph.clock))
	n.log.Info("Link up", slog.Any("peer", l.peer), slog.String("remote", l.remote.String()), slog.Bool("dialed", dialed))
	err = l.run()
	n.unregister(l)
	n.log.Info("Link down", slog.Any("peer", l.peer), slog.Any("err", err))
	return err
}

// handshake authenticates a connection (Noise XXpsk3, with each side's hello inside) and reports
// the outcome to the address guard: the ticket of an accepted connection, or the dialed peer
// marked known.
func (n *Node) handshake(raw net.Conn, dialed bool, ticket *ipguard.Ticket) (*securelink.Conn, securelink.Peer, hello, error) {
	conn := n.metrics.count(raw)
	h := hello{incarnation: n.store.incarnation, head: n.head.Load(), clock: uint64(n.clock.Last()), master: n.cfg.Master,
		observed: addrPortOf(raw.RemoteAddr())}
	scfg := securelink.Config{
		NetworkKey: n.cfg.Keys.Network,
		Identity:   n.identity,
		Prologue:   n.prologue(),
		Hello:      h.marshal(),
		Random:     n.cfg.Random,
	}
	var (
		sc   *securelink.Conn
		peer securelink.Peer
		err  error
	)
	if dialed {
		sc, peer, err = securelink.Client(n.ctx, conn, scfg)
	} else {
		// The guard's deadline: shorter while many handshakes are in flight, so that
		// connections that send nothing cannot hold the slots for long.
		hctx, cancel := context.WithDeadline(n.ctx, ticket.Deadline())
		sc, peer, err = securelink.Server(hctx, conn, scfg)
		cancel()
	}
	if err != nil {
		raw.Close()
		n.metrics.handshakeFailures.Inc()
		if ticket != nil {
			endTicket(ticket, err)
		}
		if n.ctx.Err() == nil {
			n.log.Debug("Handshake failed", slog.String("remote", raw.RemoteAddr().String()), slog.Any("err", err))
			if dialed {
				n.emitError(fmt.Errorf("dt: handshake with %s: %w", raw.RemoteAddr(), err), "peer "+raw.RemoteAddr().String(), nil)
			}
		}
		return nil, peer, hello{}, err
	}
	ph, err := parseHello(peer.Hello)
	if err != nil {
		sc.Close()
		if ticket != nil {
			ticket.Failed(ipguard.FailMalformed)
		}
		return nil, peer, hello{}, err
	}
	if ticket != nil {
		ticket.Succeeded()
	} else if ap := addrPortOf(raw.RemoteAddr()); ap.IsValid() {
		// A peer this node dials may dial back; its connections take the reserved slots.
		n.guard.AddKnown(ap.Addr())
	}
	return sc, peer, ph, nil
}

// newLink makes the state of a link to an authenticated peer; nothing runs yet.
func (n *Node) newLink(raw net.Conn, dialed bool, peer securelink.Peer, ph hello) *link {
	return &link{
		n: n, peer: NodeIDOf(peer.PublicKey), peerKey: peer.PublicKey, hello: ph, dialed: dialed,
		remote:        raw.RemoteAddr(),
		ctrlOut:       make(chan []byte, 64),
		verdictOut:    make(chan []byte, VerdictBurst),
		verdictBudget: newVerdictBudget(),
		msgOut:        make(chan []byte, msgQueueLen),
		logOut:        make(chan []byte, logQueueLen),
		wants:         make(chan []RecordID, 16),
		fetches:       newFetchQueue(),

		writerDone: make(chan struct{}),
		readerDone: make(chan struct{}),
		ackKick:    make(chan struct{}, 1),
	}
}

// openSession starts the stream multiplexer on the secure connection and opens the control
// stream: the dialer opens it, the acceptor waits for it. On failure the connection is closed.
func (l *link) openSession(sc *securelink.Conn) error {
	var err error
	if l.dialed {
		l.sess, err = yamux.Client(sc, l.n.yamuxConfig())
	} else {
		l.sess, err = yamux.Server(sc, l.n.yamuxConfig())
	}
	if err != nil {
		sc.Close()
		return fmt.Errorf("dt: start multiplexer: %w", err)
	}
	if l.dialed {
		l.ctrl, err = l.sess.OpenStream()
	} else {
		l.ctrl, err = acceptWithin(l.sess, l.n.cfg.LinkTimeout)
	}
	if err != nil {
		l.sess.Close()
		return fmt.Errorf("dt: open control stream: %w", err)
	}
	return nil
}

// prologue binds a link's handshake to the table and epoch.
func (n *Node) prologue() []byte {
	return binary.BigEndian.AppendUint32(append([]byte{}, n.table[:]...), n.cfg.Epoch)
}

// endTicket reports a failed handshake to the address guard with the reason it counts by. A peer
// that closed before sending anything (a port scan, a health check) is not a failure.
func endTicket(t *ipguard.Ticket, err error) {
	switch {
	case errors.Is(err, securelink.ErrAuth):
		t.Failed(ipguard.FailBadKey)
	case errors.Is(err, securelink.ErrTimeout):
		t.Failed(ipguard.FailTimeout)
	case errors.Is(err, securelink.ErrHandshake):
		t.Abandoned()
	default:
		t.Failed(ipguard.FailMalformed)
	}
}

var errSelfLink = errors.New("dt: link to self")

// addrPortOf returns a TCP address as an AddrPort with IPv4-mapped addresses unmapped, and an
// invalid one for other transports.
func addrPortOf(a net.Addr) netip.AddrPort {
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		return netip.AddrPort{}
	}
	ap := ta.AddrPort()
	return netip.AddrPortFrom(ap.Addr().Unmap().WithZone(""), ap.Port())
}

// duplicateError says a link was refused because the peer is already linked.
type duplicateError struct{ peer NodeID }

func (e duplicateError) Error() string { return errDuplicateLink.Error() + " " + e.peer.Short() }
func (e duplicateError) Unwrap() error { return errDuplicateLink }

func acceptWithin(sess *yamux.Session, d time.Duration) (net.Conn, error) {
	type result struct {
		c   net.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		c, err := sess.AcceptStream()
		ch <- result{c, err}
	}()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case r := <-ch:
		return r.c, r.err
	case <-t.C:
		sess.Close() // ends the AcceptStream call above
		return nil, fmt.Errorf("dt: peer opened no control stream within %s", d)
	}
}

// register adds a link, resolving duplicates: when two nodes dial each other, both keep the link
// dialed by the node with the smaller id, so they agree without talking.
func (n *Node) register(l *link) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.ctx.Err() != nil {
		return ErrClosed
	}
	if !l.dialed && n.linksFromLocked(l) >= n.cfg.MaxLinksPerAddress {
		n.metrics.linksRefused.Inc()
		n.linksLog.Hit(context.Background(), slog.String("remote", l.remote.String()), slog.Any("peer", l.peer),
			slog.Int("max", n.cfg.MaxLinksPerAddress))
		return errTooManyLinks
	}
	if old := n.links[l.peer]; old != nil {
		if preferred(l, n.id) && !preferred(old, n.id) {
			old.close(duplicateError{peer: old.peer})
		} else {
			return duplicateError{peer: l.peer}
		}
	}
	l.tracker = cursorTracker{base: n.store.cursor(l.peer, l.hello.incarnation)}
	n.links[l.peer] = l
	n.metrics.links.Set(float64(len(n.links)))
	return nil
}

// linksFromLocked counts the links dialed to this node from l's address key, l's peer's own
// link aside (a redial that replaces it). Called with n.mu held.
func (n *Node) linksFromLocked(l *link) int {
	key := neighbourOf(l)
	count := 0
	for peer, o := range n.links {
		if peer != l.peer && !o.dialed && neighbourOf(o) == key {
			count++
		}
	}
	return count
}

var errTooManyLinks = errors.New("dt: too many links from one address")

// preferred reports whether l was dialed by the node with the smaller id of its two ends.
func preferred(l *link, self NodeID) bool {
	dialer := self
	if !l.dialed {
		dialer = l.peer
	}
	other := l.peer
	if !l.dialed {
		other = self
	}
	return string(dialer[:]) < string(other[:])
}

func (n *Node) unregister(l *link) {
	n.mu.Lock()
	if n.links[l.peer] == l {
		delete(n.links, l.peer)
		close(n.linkGone)
		n.linkGone = make(chan struct{})
	}
	n.metrics.links.Set(float64(len(n.links)))
	n.mu.Unlock()
}

// waitLinkGone blocks until peer has no link, or the node closes.
func (n *Node) waitLinkGone(peer NodeID) {
	for {
		n.mu.RLock()
		_, ok := n.links[peer]
		gone := n.linkGone
		n.mu.RUnlock()
		if !ok {
			return
		}
		select {
		case <-gone:
		case <-n.ctx.Done():
			return
		}
	}
}

// run starts the link's goroutines and waits for the link to end.
func (l *link) run() error {
	l.wg.Go(l.runWriter)
	l.wg.Go(l.runReader)
	l.wg.Go(l.runWantServer)
	l.wg.Go(l.serveBodies)
	for range bodyFetchers {
		l.wg.Go(l.runFetcher)
	}
	if l.dialed {
		l.wg.Go(l.runAntiEntropy)
	}
	l.startSync()
	<-l.ctx.Done()
	// A write blocked on a peer that keeps its session alive but stopped reading the control
	// stream (which is how a peer falls msgQueueLen behind) would never return: the deadline
	// ends it.
	_ = l.ctrl.SetWriteDeadline(time.Now().Add(l.n.cfg.LinkTimeout))
	<-l.writerDone
	// Half-close: the peer reads the end of our stream, ends its side and closes. Reading on until
	// then (bounded by closeGrace) means no unread data is left in our socket when it closes, so
	// TCP never resets a connection whose last frames (a message sent just before Close) are
	// still on their way to the peer.
	_ = l.ctrl.SetReadDeadline(time.Now().Add(closeGrace))
	_ = l.ctrl.Close()
	<-l.readerDone
	l.sess.Close()
	l.wg.Wait()
	l.saveCursor()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closeErr == nil {
		l.closeErr = ErrClosed
	}
	return l.closeErr
}

// close ends the link with a reason; the first reason wins.
func (l *link) close(err error) {
	l.mu.Lock()
	if l.closeErr == nil {
		l.closeErr = err
	}
	l.mu.Unlock()
	l.closed.Store(true)
	l.cancel()
}

// fail ends the link because the peer misbehaved: the error is reported and counts as a strike
// against the peer's address.
func (l *link) fail(err error) {
	err = fmt.Errorf("peer %s (%s): %w", l.peer.Short(), l.remote, err)
	l.n.log.Warn("Dropping misbehaving peer", slog.Any("err", err))
	l.n.emitError(err, "peer "+l.remote.String(), nil)
	if ap, perr := netip.ParseAddrPort(l.remote.String()); perr == nil {
		l.n.guard.Strike(ap.Addr().Unmap(), err.Error())
	}
	l.close(err)
}

// send queues a sync-protocol frame, blocking while the writer is busy.
func (l *link) send(typ frameType, payload []byte) bool {
	select {
	case l.ctrlOut <- appendFrame(nil, typ, payload):
		return true
	case <-l.ctx.Done():
		return false
	}
}

// sendMessage queues a flooded message without blocking; a peer too slow to take it (msgQueueLen
// frames or Config.MessageQueueBytes queued) is disconnected. Frames are shared by every link
// they are queued on, so the bound is on what one peer holds back, not on copies.
func (l *link) sendMessage(frame []byte) {
	if l.closed.Load() {
		return
	}
	if l.msgOutBytes.Add(int64(len(frame))) <= int64(l.n.cfg.MessageQueueBytes) {
		select {
		case l.msgOut <- frame:
			return
		default:
		}
	}
	l.msgOutBytes.Add(-int64(len(frame)))
	if !l.closed.CompareAndSwap(false, true) {
		return // another forward found the queue full first, or the link is closing anyway
	}
	l.n.metrics.slowPeers.Inc()
	err := fmt.Errorf("dt: peer %s too slow: %d messages (%d bytes) queued; disconnecting", l.peer.Short(), len(l.msgOut), l.msgOutBytes.Load())
	if l.n.slowLog.Hit(context.Background(), slog.Any("peer", l.peer), slog.String("remote", l.remote.String()),
		slog.Int("queued", len(l.msgOut)), slog.Int64("queued_bytes", l.msgOutBytes.Load())) {
		l.n.emitError(err, "peer "+l.remote.String(), nil)
	}
	l.close(errors.New("dt: peer too slow for messages"))
}

// takeMessage accounts for a frame taken from msgOut.
func (l *link) takeMessage(f []byte) []byte {
	l.msgOutBytes.Add(-int64(len(f)))
	return f
}

// runWriter is the only writer of the control stream. Messages go first, then acks and sync
// frames, then log entries; the buffer is flushed whenever no frame is waiting. When the link
// closes it still drains queued messages and acks (bounded by LinkTimeout), so a message sent just
// before Close is not lost.
func (l *link) runWriter() {
	defer close(l.writerDone)
	w := bufio.NewWriterSize(l.ctrl, 64<<10)
	write := func(f []byte) bool {
		l.n.metrics.frameBytesOut[f[0]&15].Add(uint64(len(f)))
		if _, err := w.Write(f); err != nil {
			l.close(fmt.Errorf("dt: write to peer: %w", err))
			return false
		}
		return true
	}
	for {
		f := l.nextFrame()
		if f == nil {
			if err := w.Flush(); err != nil {
				l.close(fmt.Errorf("dt: write to peer: %w", err))
				return
			}
			select {
			case f = <-l.msgOut:
				l.takeMessage(f)
			case f = <-l.ctrlOut:
			case f = <-l.logOut:
			case f = <-l.verdictOut:
			case <-l.ackKick:
				f = l.ackAfterVerdicts()
			case <-l.ctx.Done():
				_ = l.ctrl.SetWriteDeadline(time.Now().Add(l.n.cfg.LinkTimeout))
				for f := l.nextUrgent(); f != nil; f = l.nextUrgent() {
					if !write(f) {
						return
					}
				}
				_ = w.Flush()
				return
			}
		}
		if !write(f) {
			return
		}
	}
}

// nextFrame returns the most urgent queued frame, or nil when none waits.
func (l *link) nextFrame() []byte {
	if f := l.nextUrgent(); f != nil {
		return f
	}
	select {
	case f := <-l.ctrlOut:
		return f
	default:
	}
	select {
	case f := <-l.logOut:
		return f
	default:
	}
	return nil
}

func (l *link) nextUrgent() []byte {
	select {
	case f := <-l.msgOut:
		return l.takeMessage(f)
	default:
	}
	// A verdict goes before the acknowledgement that may cover its record: the writer waiting
	// on that record reads the verdict first.
	select {
	case f := <-l.verdictOut:
		return f
	default:
	}
	select {
	case <-l.ackKick:
		return l.ackFrame()
	default:
	}
	return nil
}

// ackAfterVerdicts returns the frame to send when the writer woke for an ack: a verdict queued
// meanwhile goes first, and the ack waits for the next turn.
func (l *link) ackAfterVerdicts() []byte {
	select {
	case f := <-l.verdictOut:
		select {
		case l.ackKick <- struct{}{}:
		default:
		}
		return f
	default:
		return l.ackFrame()
	}
}

func (l *link) ackFrame() []byte {
	return appendFrame(nil, frameAck, binary.AppendUvarint(nil, l.ackOut.Load()))
}

// runReader reads and dispatches control frames until the stream ends.
func (l *link) runReader() {
	defer close(l.readerDone)
	r := bufio.NewReaderSize(l.ctrl, 64<<10)
	for {
		f, err := readFrame(r)
		if err == nil && l.ctx.Err() != nil {
			continue // closing: drain what the peer still sends until it closes too
		}
		if err != nil {
			if errors.Is(err, ErrMalformed) {
				l.fail(err)
			} else {
				l.close(fmt.Errorf("dt: read from peer: %w", err))
			}
			return
		}
		l.n.metrics.framesIn.Inc()
		if err := l.dispatch(f); err != nil {
			l.fail(err)
			return
		}
	}
}

func (l *link) dispatch(f frame) error {
	switch f.typ {
	case frameSyncStart:
		cursor, mode, err := parseSyncStart(f.payload)
		if err != nil {
			return err
		}
		if mode == syncTail {
			l.startTail(cursor)
		}
		return nil // syncReconcile: the peer reconciles, then sends frameTailFrom
	case frameTailFrom:
		seq, err := parseUvarint(f.payload, "tail from")
		if err != nil {
			return err
		}
		l.startTail(seq)
		return nil
	case frameLogEntry:
		p, err := parseRecordPayload(f.payload, true)
		if err != nil {
			return err
		}
		if p.seq == 0 {
			return fmt.Errorf("%w: log entry with sequence 0", ErrMalformed)
		}
		return l.receiveRecord(p, false)
	case frameRecord:
		p, err := parseRecordPayload(f.payload, false)
		if err != nil {
			return err
		}
		return l.receiveRecord(p, true)
	case frameCaughtUp:
		head, err := parseUvarint(f.payload, "caught up")
		if err != nil {
			return err
		}
		l.caughtUpTo(head)
		return nil
	case frameReconcile:
		return l.respond(f.payload)
	case frameReconcileReply:
		head, msg, err := parseReconcileReply(f.payload)
		if err != nil {
			return err
		}
		return l.reconcileReply(head, msg)
	case frameWant:
		ids, err := parseIDs(f.payload)
		if err != nil {
			return err
		}
		select {
		case l.wants <- ids:
		case <-l.ctx.Done():
		}
		return nil
	case frameWantDone:
		l.wantDone()
		return nil
	case frameMessage:
		return l.n.receiveMessage(l, f.payload)
	case frameVerdict:
		return l.receiveVerdict(f.payload)
	case frameAck:
		seq, err := parseUvarint(f.payload, "ack")
		if err != nil {
			return err
		}
		if seq > l.acked.Load() {
			l.acked.Store(seq)
			l.n.wakeAcks()
		}
		return nil
	}
	// Unknown frame types are skipped, for future extensibility.
	return nil
}

// dialLoop keeps a link to addr up until the node closes, redialing with capped, jittered
// exponential backoff.
func (n *Node) dialLoop(addr string) {
	backoff := n.cfg.RedialMin
	for n.ctx.Err() == nil {
		conn, err := n.cfg.Dial(n.ctx, "tcp", addr)
		if err == nil {
			began := time.Now()
			err = n.runLink(conn, true, nil)
			var dup duplicateError
			if errors.As(err, &dup) {
				// The peer is already linked through another connection: stay idle until that
				// link ends rather than churning handshakes.
				n.waitLinkGone(dup.peer)
				backoff = n.cfg.RedialMin
				continue
			}
			if time.Since(began) > 10*time.Second {
				backoff = n.cfg.RedialMin
			}
		}
		if n.ctx.Err() != nil {
			return
		}
		n.log.Debug("Peer unreachable", slog.String("addr", addr), slog.Any("err", err), slog.Duration("retry", backoff))
		jitter := time.Duration(rand.Int64N(int64(backoff)/2 + 1))
		t := time.NewTimer(backoff/2 + jitter)
		select {
		case <-t.C:
		case <-n.ctx.Done():
			t.Stop()
			return
		}
		backoff = min(2*backoff, n.cfg.RedialMax)
	}
}

// acceptLoop admits connections through the address guard before any cryptography.
func (n *Node) acceptLoop(ln net.Listener) {
	for {
		conn, err := ln.Accept()
		if err != nil {
			if n.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			n.acceptLog.Hit(context.Background(), slog.Any("err", err)) // out of descriptors: every 10 ms
			t := time.NewTimer(10 * time.Millisecond)
			select {
			case <-t.C:
			case <-n.ctx.Done():
				t.Stop()
				return
			}
			continue
		}
		addr := remoteAddr(conn)
		ticket, err := n.guard.Admit(addr)
		if err != nil {
			n.metrics.refused.Inc()
			n.log.Debug("Connection refused", slog.String("remote", addr.String()), slog.Any("err", err))
			resetConn(conn)
			continue
		}
		n.wg.Go(func() { _ = n.runLink(conn, false, ticket) })
	}
}

// resetConn closes a connection the guard refused with a TCP reset rather than a clean close, so
// the dialer can tell a refused address (its handshake reset before the node read a byte) from
// a refused key (the first message read, then a clean close), and the refused connection leaves
// no TIME_WAIT state on the node.
func resetConn(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	c.Close()
}

func remoteAddr(c net.Conn) netip.Addr {
	if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		if a, ok := netip.AddrFromSlice(ta.IP); ok {
			return a.Unmap()
		}
	}
	ap, _ := netip.ParseAddrPort(c.RemoteAddr().String())
	return ap.Addr().Unmap()
}

func (l *link) status() LinkStatus {
	l.mu.Lock()
	defer l.mu.Unlock()
	return LinkStatus{Peer: l.peer, Remote: l.remote.String(), Dialed: l.dialed, Master: l.hello.master, CaughtUp: l.caughtUp, Cursor: l.tracker.cursor()}
}
