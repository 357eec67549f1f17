package resolve

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/time/rate"

	"github.com/dt-cdn/dt/dt"
)

// Messenger sends a dt message to every node online (*dt.Node does).
type Messenger interface {
	SendMessage(ctx context.Context, v any) error
}

// LookupFunc resolves name (canonical) of type qtype and returns the resolver's response.
type LookupFunc func(ctx context.Context, name string, qtype uint16) (*dns.Msg, error)

// ResponderConfig configures a Responder. Zero values mean the defaults given per field.
type ResponderConfig struct {
	// Node sends the answers. Required.
	Node Messenger
	// Self is the answering node's id, written into every answer. Required.
	Self dt.NodeID
	// Lookup is the node's resolver (a Stub). Required.
	Lookup LookupFunc
	// PerOrigin and PerOriginBurst bound the requests answered for one asking node. Zero: 1/s,
	// burst 5 (a check before each mail sent is a few requests, not a stream).
	PerOrigin      rate.Limit
	PerOriginBurst int
	// Total and TotalBurst bound the requests answered for all askers together. Zero: 10/s,
	// burst 20.
	Total      rate.Limit
	TotalBurst int
	// Workers is how many lookups run at once; requests beyond it and the queue are dropped.
	// Zero: 4.
	Workers int
	// Timeout bounds one lookup. Zero: 5 s.
	Timeout time.Duration
	// MaxAge drops requests older than this when their turn comes: the asker stopped waiting.
	// Zero: 30 s.
	MaxAge time.Duration
	// Logger receives dropped requests (debug) and failed sends (warn). Nil discards.
	Logger *slog.Logger
	// Now is the clock. Nil: time.Now.
	Now func() time.Time
}

// Responder answers the resolve requests of other nodes with this node's resolver. HandleEvent
// takes the node's events and never blocks; Run performs the lookups.
type Responder struct {
	cfg   ResponderConfig
	log   *slog.Logger
	queue chan request
	total *rate.Limiter

	mu      sync.Mutex
	origins map[dt.NodeID]*rate.Limiter // guarded by mu
	seen    map[string]time.Time        // guarded by mu: request ids answered, for MaxAge
}

// request is one accepted request waiting for a worker.
type request struct {
	req      Request
	received time.Time
}

// maxOrigins bounds the per-origin limiters kept; past it they are all forgotten, which only ever
// errs toward answering (dt's flood limiter does the same).
const maxOrigins = 10000

// NewResponder checks cfg and returns a Responder.
func NewResponder(cfg ResponderConfig) (*Responder, error) {
	var errs []error
	if cfg.Node == nil {
		errs = append(errs, errors.New("resolve: ResponderConfig.Node is required"))
	}
	if cfg.Lookup == nil {
		errs = append(errs, errors.New("resolve: ResponderConfig.Lookup is required"))
	}
	if cfg.Self == (dt.NodeID{}) {
		errs = append(errs, errors.New("resolve: ResponderConfig.Self is required"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if cfg.PerOrigin == 0 {
		cfg.PerOrigin, cfg.PerOriginBurst = 1, max(cfg.PerOriginBurst, 5)
	}
	if cfg.PerOriginBurst == 0 {
		cfg.PerOriginBurst = 5
	}
	if cfg.Total == 0 {
		cfg.Total, cfg.TotalBurst = 10, max(cfg.TotalBurst, 20)
	}
	if cfg.TotalBurst == 0 {
		cfg.TotalBurst = 20
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 4
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = 30 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Responder{cfg: cfg, log: log, queue: make(chan request, 4*cfg.Workers),
		total: rate.NewLimiter(cfg.Total, cfg.TotalBurst), origins: map[dt.NodeID]*rate.Limiter{}, seen: map[string]time.Time{}}, nil
}

// HandleEvent takes one event of the node: resolve requests are checked, rate-limited and queued;
// everything else is ignored. It never blocks. Call it from one goroutine.
func (r *Responder) HandleEvent(ev dt.Event) {
	if ev.Type != dt.EventMessageReceived {
		return
	}
	req, err := DecodeRequest(ev.Object)
	if errors.Is(err, ErrNotResolve) {
		return
	}
	if err != nil {
		r.log.Debug("Bad resolve request", slog.Any("from", ev.From), slog.Any("err", err))
		return
	}
	if req.From != ev.From.String() {
		r.log.Warn("Resolve request in another node's name; dropped", slog.Any("from", ev.From), slog.String("claims", req.From))
		return
	}
	now := r.cfg.Now()
	if !r.admit(ev.From, req.ID, now) {
		r.log.Debug("Resolve request over the rate limit; dropped", slog.Any("from", ev.From))
		return
	}
	select {
	case r.queue <- request{req: req, received: now}:
	default:
		r.log.Debug("Resolve queue full; request dropped", slog.Any("from", ev.From))
	}
}

// admit applies the duplicate check and both rate limits.
func (r *Responder) admit(origin dt.NodeID, id string, now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k, t := range r.seen {
		if now.Sub(t) > r.cfg.MaxAge {
			delete(r.seen, k)
		}
	}
	if _, dup := r.seen[id]; dup {
		return false
	}
	lim := r.origins[origin]
	if lim == nil {
		if len(r.origins) >= maxOrigins {
			clear(r.origins)
		}
		lim = rate.NewLimiter(r.cfg.PerOrigin, r.cfg.PerOriginBurst)
		r.origins[origin] = lim
	}
	if !lim.AllowN(now, 1) || !r.total.AllowN(now, 1) {
		return false
	}
	r.seen[id] = now
	return true
}

// Run answers queued requests with Workers lookups at a time until ctx ends, then waits for the
// lookups in flight.
func (r *Responder) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for range r.cfg.Workers {
		wg.Go(func() {
			for {
				select {
				case q := <-r.queue:
					r.answer(ctx, q)
				case <-ctx.Done():
					return
				}
			}
		})
	}
	wg.Wait()
	return nil
}

// answer resolves one request and sends the answer.
func (r *Responder) answer(ctx context.Context, q request) {
	now := r.cfg.Now()
	if now.Sub(q.received) > r.cfg.MaxAge || now.Sub(time.UnixMilli(q.req.Time)) > r.cfg.MaxAge {
		return
	}
	a := Resolve(ctx, r.cfg.Lookup, q.req, r.cfg.Self, r.cfg.Timeout)
	b, err := json.Marshal(a)
	if err == nil && len(b) > maxAnswerBytes {
		a.Rcode, a.Records, a.Error = "", []string{}, "answer too large to send"
		b, err = json.Marshal(a)
	}
	if err == nil {
		err = r.cfg.Node.SendMessage(ctx, json.RawMessage(b))
	}
	if err != nil && ctx.Err() == nil {
		r.log.Warn("Resolve answer not sent", slog.Any("err", err))
	}
}

// maxAnswerBytes keeps an answer under dt's default message size limit (64 KiB).
const maxAnswerBytes = 60 << 10

// Resolve runs one request's lookup and returns the answer node self gives.
func Resolve(ctx context.Context, lookup LookupFunc, req Request, self dt.NodeID, timeout time.Duration) Answer {
	a := Answer{Type: AnswerType, V: Version, ID: req.ID, To: req.From, Node: self.String(), Name: req.Name, QType: req.QType, Records: []string{}}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	began := time.Now()
	m, err := lookup(ctx, req.Name, req.QueryType())
	a.Millis = time.Since(began).Milliseconds()
	if err != nil {
		a.Error = truncate(err.Error(), maxErrorBytes)
		return a
	}
	a.Rcode = dns.RcodeToString[m.Rcode]
	if _, known := dns.StringToRcode[a.Rcode]; !known {
		a.Rcode, a.Error = "", fmt.Sprintf("response code %d", m.Rcode)
		return a
	}
	if recs := Canonical(m.Answer); len(recs) <= maxRecords {
		a.Records = recs
	} else {
		a.Rcode, a.Error = "", "answer of more than 256 records"
	}
	for _, rec := range a.Records {
		if len(rec) > maxRecordBytes {
			a.Rcode, a.Records, a.Error = "", []string{}, "record too long to compare"
			break
		}
	}
	return a
}

// truncate shortens s to n bytes at most, on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xc0 == 0x80 {
		n--
	}
	return s[:n]
}
