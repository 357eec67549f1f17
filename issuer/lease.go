package issuer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"time"

	"github.com/dt-cdn/dt/dt"
)

// Defaults of LeaseConfig.
const (
	// DefaultLeaseDuration is how long a lease holds without renewal: how long the network waits
	// for a successor after an issuer stops, against how often the holder must write. Nothing
	// is urgent for an issuer (certificates are renewed weeks or days ahead), so minutes are fine.
	DefaultLeaseDuration = 2 * time.Minute
	// DefaultLeaseRenew is how often the holder renews: four times per lease, so that three
	// renewals in a row may fail before the lease runs out.
	DefaultLeaseRenew = 30 * time.Second
	// DefaultLeaseSettle is how long an issuer waits after writing the lease before it reads
	// which write won: a bound on how long a record takes to reach every node of a healthy
	// network (milliseconds on a LAN, a few seconds across continents), with a wide margin.
	DefaultLeaseSettle = 10 * time.Second
)

// Limits of the lease record, which every issuer parses from the network.
const (
	// MaxLeaseBytes bounds the lease record's JSON; the record takes under 150 bytes.
	MaxLeaseBytes = 512
	// MaxHolderLen bounds LeaseRecord.Holder: a node id is 64 hex digits.
	MaxHolderLen = 64
)

// ErrInvalidLease is wrapped by every error of ParseLease.
var ErrInvalidLease = errors.New("issuer: invalid lease record")

// LeaseRecord is the record under LeaseKey. Its JSON:
//
//	{"v":1,"holder":"<node id of the issuer>","expires":1767225600}
//
// Expires is Unix seconds. A reader caps it at the record's own clock (its hybrid logical
// clock, which every node bounds to its own clock plus dt's maximum skew) plus the lease
// duration, so a holder whose clock runs ahead cannot hold the lease for longer.
type LeaseRecord struct {
	V       int    `json:"v"`
	Holder  string `json:"holder"`
	Expires int64  `json:"expires"`
}

// ParseLease decodes and checks a lease record from untrusted bytes.
func ParseLease(b []byte) (LeaseRecord, error) {
	if len(b) > MaxLeaseBytes {
		return LeaseRecord{}, fmt.Errorf("%w: %d bytes, at most %d", ErrInvalidLease, len(b), MaxLeaseBytes)
	}
	var r LeaseRecord
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&r); err != nil {
		return LeaseRecord{}, fmt.Errorf("%w: %w", ErrInvalidLease, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return LeaseRecord{}, fmt.Errorf("%w: data after the JSON object", ErrInvalidLease)
	}
	switch {
	case r.V != 1:
		return LeaseRecord{}, fmt.Errorf("%w: version %d, want 1", ErrInvalidLease, r.V)
	case r.Holder == "" || len(r.Holder) > MaxHolderLen:
		return LeaseRecord{}, fmt.Errorf("%w: holder of %d characters, want 1 to %d", ErrInvalidLease, len(r.Holder), MaxHolderLen)
	case r.Expires <= 0:
		return LeaseRecord{}, fmt.Errorf("%w: no expiry", ErrInvalidLease)
	}
	return r, nil
}

// Table is what the issuer needs of its dt node; *dt.Node has it.
type Table interface {
	Get(ctx context.Context, key string) ([]byte, error)
	Version(key string) (uint64, bool)
	Put(ctx context.Context, key string, body []byte) error
	Delete(ctx context.Context, key string) error
	DeleteMany(ctx context.Context, keys []string) error
	WaitReplicated(ctx context.Context, key string, peers int) error
	ObjectKeys() iter.Seq[string]
}

var _ Table = (*dt.Node)(nil)

// LeaseConfig configures a Lease.
type LeaseConfig struct {
	// Table is the issuer's node. Required.
	Table Table
	// Holder names this issuer in the lease: its node id. Required; at most MaxHolderLen.
	Holder string
	// Duration is how long a lease holds without renewal. Zero: DefaultLeaseDuration.
	Duration time.Duration
	// Renew is how often the holder renews, less than Duration - Settle. Zero:
	// DefaultLeaseRenew.
	Renew time.Duration
	// Settle is how long to wait after writing the lease before reading which write won.
	// Longer makes two holders at once less likely on a slow network, and every takeover
	// slower. Zero: DefaultLeaseSettle.
	Settle time.Duration
	// Now is the wall clock. Nil: time.Now.
	Now func() time.Time
	// Logger receives the lease's changes. Nil discards them.
	Logger *slog.Logger
	// Refused is called for a lease record that ParseLease refuses (it counts as no lease).
	// Nil: nothing is called.
	Refused func()
}

// Lease lets one issuer of a network act at a time, through the record under LeaseKey.
//
// An issuer takes the lease when the record is absent, its own, or expired: it writes a record
// naming itself, waits until a peer holds it, waits Settle, and reads the record again. It
// acts only if the record still names it. Two issuers that take an expired lease at once both
// write; the table keeps, on every node, the write with the newest clock (last writer wins,
// ties broken alike everywhere), so once both writes have reached every node every node holds
// the same winner. Each issuer reads only after Settle, by which time the other's write, made
// before it could see the first (else it would not have written), has reached it when
// propagation takes less than Settle: the loser sees the winner's name and does not act, the
// winner sees its own. The holder renews every Renew and stops acting, cancelling what it
// runs, when a renewal has not been confirmed by a peer and read back by Duration - Settle
// after the last confirmed one, so a holder cut off from the network stops before a successor
// can take over. What remains is a network partitioned for longer than Settle while two
// issuers both write: two orders for a name, which the CA tolerates, never a wrong certificate.
type Lease struct {
	cfg LeaseConfig
	log *slog.Logger
}

// NewLease checks cfg and returns the lease.
func NewLease(cfg LeaseConfig) (*Lease, error) {
	cfg = cfg.withDefaults()
	var errs []error
	if cfg.Table == nil {
		errs = append(errs, errors.New("a table (Table) is required"))
	}
	if cfg.Holder == "" || len(cfg.Holder) > MaxHolderLen {
		errs = append(errs, fmt.Errorf("a holder name of 1 to %d characters is required", MaxHolderLen))
	}
	if err := cfg.checkTimers(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Lease{cfg: cfg, log: log}, nil
}

// withDefaults returns cfg with its zero fields set to the defaults.
func (cfg LeaseConfig) withDefaults() LeaseConfig {
	cfg.Duration = cmp(cfg.Duration, DefaultLeaseDuration)
	cfg.Renew = cmp(cfg.Renew, DefaultLeaseRenew)
	cfg.Settle = cmp(cfg.Settle, DefaultLeaseSettle)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return cfg
}

// checkTimers refuses timers with which the holder could not renew before its lease expires.
func (cfg LeaseConfig) checkTimers() error {
	if cfg.Renew <= 0 || cfg.Settle <= 0 || cfg.Renew+cfg.Settle >= cfg.Duration {
		return fmt.Errorf("lease renew (%v) plus settle (%v) must be under the lease duration (%v)", cfg.Renew, cfg.Settle, cfg.Duration)
	}
	return nil
}

// Current returns the lease as the table holds it, with its expiry capped by the record's
// clock (see LeaseRecord); false when there is none or it does not parse.
func (l *Lease) Current(ctx context.Context) (LeaseRecord, time.Time, bool) {
	body, err := l.cfg.Table.Get(ctx, LeaseKey)
	if err != nil {
		return LeaseRecord{}, time.Time{}, false
	}
	clock, ok := l.cfg.Table.Version(LeaseKey)
	r, err := ParseLease(body)
	if err != nil && l.cfg.Refused != nil {
		l.cfg.Refused()
	}
	if !ok || err != nil {
		return LeaseRecord{}, time.Time{}, false
	}
	expires := time.Unix(r.Expires, 0)
	if limit := clockTime(clock).Add(l.cfg.Duration); expires.After(limit) {
		expires = limit
	}
	return r, expires, true
}

// clockTime is the wall-clock part of a record's hybrid logical clock: milliseconds in the
// high 48 bits (dt's hlc.Timestamp).
func clockTime(clock uint64) time.Time { return time.UnixMilli(int64(clock >> 16)) }

// Run takes the lease whenever it is free, and runs act while it holds it: act's context ends
// when the lease is lost or ctx ends, and Run waits for act to return before it tries again.
// It returns nil once ctx ends.
func (l *Lease) Run(ctx context.Context, act func(context.Context)) error {
	for {
		expires, err := l.acquire(ctx)
		if err != nil {
			return nil // ctx ended
		}
		l.log.Info("Issuer lease taken", slog.Time("expires", expires))
		l.hold(ctx, expires, act)
		if ctx.Err() != nil {
			return nil
		}
		l.log.Warn("Issuer lease lost")
	}
}

// acquire returns once this issuer holds the lease, with the expiry it confirmed, or ctx's
// error.
func (l *Lease) acquire(ctx context.Context) (time.Time, error) {
	for {
		wait := l.cfg.Renew
		r, expires, ok := l.Current(ctx)
		now := l.cfg.Now()
		if ok && r.Holder != l.cfg.Holder && now.Before(expires) {
			wait = min(wait, expires.Sub(now)+time.Second)
		} else if exp, won, err := l.claim(ctx); err != nil {
			l.log.Warn("Issuer lease not written", slog.Any("err", err))
		} else if won {
			return exp, nil
		}
		if err := sleep(ctx, wait); err != nil {
			return time.Time{}, err
		}
	}
}

// hold runs act while the lease is held, renewing it, and returns once it is lost or ctx ends
// and act has returned.
func (l *Lease) hold(ctx context.Context, expires time.Time, act func(context.Context)) {
	actCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		act(actCtx)
	}()
	defer func() { cancel(); <-done }()
	for {
		deadline := expires.Add(-l.cfg.Settle)
		if err := sleep(ctx, min(l.cfg.Renew, deadline.Sub(l.cfg.Now()))); err != nil {
			return
		}
		if !l.cfg.Now().Before(deadline) {
			return
		}
		exp, won, err := l.claim(ctx)
		switch {
		case err != nil:
			l.log.Warn("Issuer lease not renewed", slog.Any("err", err))
		case !won:
			return
		default:
			expires = exp
		}
	}
}

// claim writes the lease naming this issuer, waits for a peer to hold it and for Settle, and
// reports whether the table then still names this issuer.
func (l *Lease) claim(ctx context.Context) (time.Time, bool, error) {
	expires := l.cfg.Now().Add(l.cfg.Duration)
	body, err := json.Marshal(LeaseRecord{V: 1, Holder: l.cfg.Holder, Expires: expires.Unix()})
	if err != nil {
		return time.Time{}, false, err
	}
	if err := l.cfg.Table.Put(ctx, LeaseKey, body); err != nil {
		return time.Time{}, false, fmt.Errorf("issuer: write lease: %w", err)
	}
	wctx, cancel := context.WithTimeout(ctx, l.cfg.Settle)
	defer cancel()
	if err := l.cfg.Table.WaitReplicated(wctx, LeaseKey, 1); err != nil {
		return time.Time{}, false, fmt.Errorf("issuer: lease not confirmed by a peer: %w", err)
	}
	if err := sleep(ctx, l.cfg.Settle); err != nil {
		return time.Time{}, false, err
	}
	r, got, ok := l.Current(ctx)
	if !ok || r.Holder != l.cfg.Holder {
		return time.Time{}, false, nil
	}
	if got.Before(expires) {
		expires = got
	}
	return expires, true, nil
}

// sleep waits d or until ctx ends, returning ctx's error then.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
