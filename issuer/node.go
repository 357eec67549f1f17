package issuer

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/dt-cdn/dt/netcert"
	"github.com/dt-cdn/dt/nodehost"
)

// Defaults of Config.
const (
	// DefaultDirectory is Let's Encrypt's production ACME directory.
	DefaultDirectory = "https://acme-v02.api.letsencrypt.org/directory"
	// DefaultScan is how often the issuer reads the table for names to certify and renewals
	// due: a new site's certificate waits at most this long, against a read of every site
	// record each time.
	DefaultScan = 5 * time.Second
	// DefaultChallengeTTL is how long nodes answer a challenge record: longer than any order
	// takes, short enough that a record an issuer failed to delete soon stops being answered.
	DefaultChallengeTTL = time.Hour
	// DefaultPropagationTimeout bounds the wait for every DNS node or edge to answer a
	// challenge before the CA is asked to validate.
	DefaultPropagationTimeout = 2 * time.Minute
	// DefaultRetryBase is the wait after a first failed order; it doubles with each failure in
	// a row.
	DefaultRetryBase = time.Minute
	// DefaultRetryMax caps the wait between attempts: a day, so a name failing for a week costs
	// the CA's failed-validation limit a handful of attempts, not thousands.
	DefaultRetryMax = 24 * time.Hour
)

// Config configures an issuer. New checks it; it is not modified afterwards. Zero values mean
// the defaults given per field.
type Config struct {
	// Host configures the issuer's dt node (see nodehost.Config). Host.Node.Master must be set
	// and Host.Node.Keys hold a key granted the certificate scope (Scope) as Keys.Publisher, or
	// a master key. Host.Node.LazyBodies is always set: the issuer reads records, never a
	// site's file data. Required: Host.Node.Keys and Host.Node.DataDir.
	Host nodehost.Config

	// Directory is the ACME directory URL. Empty: DefaultDirectory.
	Directory string
	// Email is the account's contact address, where the CA sends expiry warnings. Empty: none.
	Email string
	// Roots are the CAs trusted for the ACME server's HTTPS (a test CA such as Pebble's). Nil:
	// the system's.
	Roots *x509.CertPool
	// HTTPClient talks to the CA. Nil: one that trusts Roots.
	HTTPClient *http.Client

	// Nameservers are the DNS servers (host:port) asked for a DNS-01 answer before the CA
	// validates: every dt dns node. Empty: the zone's NS records, as the world resolves them.
	Nameservers []string
	// EdgeHTTP are edges' port-80 listeners (host:port) asked for an HTTP-01 answer before the
	// CA validates, beside the heartbeats of every live edge, which report the challenge records
	// each holds. Empty: the heartbeats alone.
	EdgeHTTP []string
	// PropagationTimeout bounds the wait for those answers. Zero: DefaultPropagationTimeout.
	PropagationTimeout time.Duration
	// ChallengeTTL is how long challenge records are answered. Zero: DefaultChallengeTTL.
	ChallengeTTL time.Duration

	// Scan is how often the table is read for names and renewals due. Zero: DefaultScan.
	Scan time.Duration
	// RetryBase and RetryMax bound the backoff after failed orders. Zero: DefaultRetryBase,
	// DefaultRetryMax.
	RetryBase, RetryMax time.Duration

	// Lease configures the lease; its Table, Holder, Now and Logger are set by the issuer.
	// Zero: the lease's defaults.
	Lease LeaseConfig
	// Now is the wall clock. Nil: time.Now.
	Now func() time.Time

	holder string // the node's id, set by Run
}

// Issuer is the issuer role: a dt node that, while it holds the lease, obtains and renews a
// certificate for every name the network serves. Its admin listener adds GET /issuer (Status).
type Issuer struct {
	cfg Config
	log *slog.Logger
	m   *manager // set by Run before the admin listener serves
}

// New checks cfg and returns an Issuer that Run starts.
func New(cfg Config) (*Issuer, error) {
	var errs []error
	if cfg.Host.Node.DataDir == "" {
		errs = append(errs, errors.New("a data directory (Host.Node.DataDir) is required"))
	}
	if !cfg.Host.Node.Master || (cfg.Host.Node.Keys.Master == nil && cfg.Host.Node.Keys.Publisher == nil) {
		errs = append(errs, errors.New("an issuer writes: Host.Node.Master and an issuer or master key are required"))
	}
	if cfg.PropagationTimeout < 0 || cfg.ChallengeTTL < 0 || cfg.Scan < 0 || cfg.RetryBase < 0 || cfg.RetryMax < 0 {
		errs = append(errs, errors.New("negative durations"))
	}
	if err := cfg.Lease.withDefaults().checkTimers(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	cfg.Directory = cmp(cfg.Directory, DefaultDirectory)
	cfg.PropagationTimeout = cmp(cfg.PropagationTimeout, DefaultPropagationTimeout)
	cfg.ChallengeTTL = cmp(cfg.ChallengeTTL, DefaultChallengeTTL)
	cfg.Scan = cmp(cfg.Scan, DefaultScan)
	cfg.RetryBase = cmp(cfg.RetryBase, DefaultRetryBase)
	cfg.RetryMax = cmp(cfg.RetryMax, DefaultRetryMax)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: time.Minute, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: cfg.Roots}, Proxy: http.ProxyFromEnvironment}}
	}
	cfg.Host.Node.LazyBodies = true
	log := cfg.Host.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Issuer{cfg: cfg, log: log}, nil
}

// cmp returns v, or def when v is zero.
func cmp[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// Run opens the node and, while this issuer holds the lease, obtains and renews certificates,
// until ctx ends; then it stops the ACME work, the admin listener and the node, and returns
// once every goroutine it started has ended. An Issuer runs once.
func (is *Issuer) Run(ctx context.Context) error {
	h, err := nodehost.Open(is.cfg.Host)
	if err != nil {
		return err
	}
	sealer, err := netcert.NewSealer(is.cfg.Host.Node.Keys.Network)
	if err != nil {
		return errors.Join(err, h.Close())
	}
	cfg := is.cfg
	cfg.holder = h.Node().ID().String()
	met := newMetrics(h.Registerer())
	lc := cfg.Lease
	lc.Table, lc.Holder, lc.Now, lc.Logger = h.Node(), cfg.holder, cfg.Now, is.log
	lc.Refused = met.refused.WithLabelValues("lease").Inc
	lease, err := NewLease(lc)
	if err != nil {
		return errors.Join(err, h.Close())
	}
	is.m = &manager{cfg: cfg, table: h.Node(), sealer: sealer, http: cfg.HTTPClient,
		http01Client: &http.Client{Timeout: 5 * time.Second}, log: is.log,
		metrics: met, states: map[string]*CertStatus{}, edges: newEdgeWatch()}
	if err := h.Subscribe(is.m.edges); err != nil {
		return errors.Join(err, h.Close())
	}
	return h.Run(ctx, nodehost.Role{
		Routes: func(mux *http.ServeMux) { mux.HandleFunc("GET /issuer", is.serveStatus) },
		Serve: func(ctx context.Context, ready func(nodehost.Serving) error) error {
			if err := ready(nodehost.Serving{}); err != nil {
				return err
			}
			if err := h.Node().WaitSynced(ctx); err != nil {
				return nil // ctx ended
			}
			is.log.Info("Issuer running", slog.String("directory", cfg.Directory))
			return lease.Run(ctx, is.m.run)
		},
	})
}

// serveStatus answers GET /issuer with the certificates' state as this issuer knows it.
func (is *Issuer) serveStatus(w http.ResponseWriter, r *http.Request) {
	groups := readWanted(r.Context(), is.m.table).groups
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(Status{V: 1, Holder: is.m.cfg.holder, Updated: is.cfg.Now().Unix(),
		Certs: is.m.snapshot(groups)})
}
