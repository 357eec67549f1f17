package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dt-cdn/dt/dt"
	"github.com/dt-cdn/dt/issuer"
	"github.com/dt-cdn/dt/netcert"
)

// RenewOverdue is how long after its planned renewal (the record's renew_after) a certificate
// the table still holds is flagged as not renewed. The issuer renews within a scan of that time
// (a minute by default) when it works; an hour leaves room for a few retries with backoff and
// a CA's brief outage before the page cries wolf, and is still weeks, or for 6-day
// certificates days, before expiry.
const RenewOverdue = time.Hour

// MaxIssuerStatusBytes bounds the issuer/status record the page decodes: the status of
// netcert.DefaultMaxRecords certificates of MaxNames long names fits well within it. A larger
// record is refused (logged), and the page shows no error reports.
const MaxIssuerStatusBytes = 4 << 20

// errIssuerStatus is wrapped by every error of parseIssuerStatus.
var errIssuerStatus = errors.New("web: invalid issuer status record")

// CertReport is what the issuer last reported of one certificate (its issuer/status record).
type CertReport struct {
	// Error is the last error obtaining or renewing it; empty: the last attempt succeeded.
	Error string
	// At is when that attempt was made; zero: never attempted.
	At time.Time
	// Failures counts the attempts failed in a row; NextAttempt is when the issuer tries again.
	Failures    int
	NextAttempt time.Time
}

// CertReportSource gives the issuer's reports of the certificates, by the name a certificate
// is known by (its first name). A CertSource that is also a CertReportSource has its reports
// on the page, the error with the time of the attempt that failed; it takes precedence over
// CertErrorSource.
type CertReportSource interface {
	CertReports() map[string]CertReport
}

// IssuerSource tells the page whether an issuer holds the lease.
type IssuerSource interface {
	// IssuerState returns the lease's state; false when the table holds no lease record.
	IssuerState() (IssuerState, bool)
}

// IssuerState is the issuer's lease as the page shows it.
type IssuerState struct {
	// Holder is the node id of the issuer holding the lease.
	Holder string `json:"holder"`
	// Expires is when the lease ends unless the holder renews it.
	Expires time.Time `json:"expires"`
	// Down says the lease has expired: no issuer acts, and nothing is renewed until one does.
	Down bool `json:"down"`
	// Updated is when the issuer last wrote its status record; zero: never.
	Updated time.Time `json:"updated,omitzero"`
}

// IssuerIndex keeps the issuer's lease and status records of the table for the page. Feed it
// every event of the node (HandleEvent); its methods are safe for concurrent use. Records whose
// event carries no body (a lazy node) are ignored: the page then shows no reports.
type IssuerIndex struct {
	log     *slog.Logger
	now     func() time.Time
	refused *prometheus.CounterVec // by record: "lease", "status"

	mu      sync.Mutex
	lease   *issuer.LeaseRecord   // guarded by mu; nil: none
	reports map[string]CertReport // guarded by mu
	updated time.Time             // guarded by mu
}

// NewIssuerIndex returns an empty index; log receives a line per refused record (nil: none),
// reg dt_redirector_issuer_records_refused_total{record} (nil: not registered).
func NewIssuerIndex(log *slog.Logger, reg prometheus.Registerer) (*IssuerIndex, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	refused := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dt_redirector_issuer_records_refused_total",
		Help: "Issuer lease and status records the dashboard refused (malformed, or the status over MaxIssuerStatusBytes or listing too many certificates), by record."},
		[]string{"record"})
	if reg != nil {
		if err := reg.Register(refused); err != nil {
			return nil, fmt.Errorf("web: register issuer metrics: %w", err)
		}
	}
	return &IssuerIndex{log: log, now: time.Now, refused: refused, reports: map[string]CertReport{}}, nil
}

// HandleEvent takes one event of the node; it does not block.
func (x *IssuerIndex) HandleEvent(ev dt.Event) {
	if ev.Key != issuer.LeaseKey && ev.Key != issuer.StatusKey {
		return
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if ev.Type == dt.EventObjectRemoved {
		x.forgetLocked(ev.Key)
		return
	}
	if ev.Type != dt.EventObjectAdded || ev.Object == nil {
		return
	}
	if ev.Key == issuer.LeaseKey {
		l, err := issuer.ParseLease(ev.Object)
		if err != nil {
			x.refused.WithLabelValues("lease").Inc()
			x.log.Warn("Issuer lease record refused", slog.Any("err", err))
			return
		}
		x.lease = &l
		return
	}
	st, err := parseIssuerStatus(ev.Object)
	if err != nil {
		x.refused.WithLabelValues("status").Inc()
		x.log.Warn("Issuer status record refused", slog.Any("err", err))
		return
	}
	x.reports, x.updated = reportsOf(st), unixTime(st.Updated)
}

func (x *IssuerIndex) forgetLocked(key string) {
	if key == issuer.LeaseKey {
		x.lease = nil
		return
	}
	x.reports, x.updated = map[string]CertReport{}, time.Time{}
}

// CertReports returns the issuer's last report of each certificate.
func (x *IssuerIndex) CertReports() map[string]CertReport {
	x.mu.Lock()
	defer x.mu.Unlock()
	out := make(map[string]CertReport, len(x.reports))
	for k, v := range x.reports {
		out[k] = v
	}
	return out
}

// IssuerState returns the lease's state now.
func (x *IssuerIndex) IssuerState() (IssuerState, bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.lease == nil {
		return IssuerState{}, false
	}
	exp := time.Unix(x.lease.Expires, 0).UTC()
	return IssuerState{Holder: x.lease.Holder, Expires: exp, Down: !x.now().Before(exp), Updated: x.updated}, true
}

// parseIssuerStatus decodes an issuer/status record from the table (written by a key with the
// certificate scope, but checked like any untrusted input): bounded in size and in
// certificates, each named.
func parseIssuerStatus(b []byte) (issuer.Status, error) {
	if len(b) > MaxIssuerStatusBytes {
		return issuer.Status{}, fmt.Errorf("%w: %d bytes, at most %d", errIssuerStatus, len(b), MaxIssuerStatusBytes)
	}
	var st issuer.Status
	if err := json.Unmarshal(b, &st); err != nil {
		return issuer.Status{}, fmt.Errorf("%w: %w", errIssuerStatus, err)
	}
	if st.V < 1 {
		return issuer.Status{}, fmt.Errorf("%w: version %d", errIssuerStatus, st.V)
	}
	if len(st.Certs) > netcert.DefaultMaxRecords {
		return issuer.Status{}, fmt.Errorf("%w: %d certificates, at most %d", errIssuerStatus, len(st.Certs), netcert.DefaultMaxRecords)
	}
	for i, c := range st.Certs {
		if c.Name == "" {
			return issuer.Status{}, fmt.Errorf("%w: certificate %d has no name", errIssuerStatus, i)
		}
	}
	return st, nil
}

// reportsOf returns the reports of st's certificates by name.
func reportsOf(st issuer.Status) map[string]CertReport {
	out := make(map[string]CertReport, len(st.Certs))
	for _, c := range st.Certs {
		out[c.Name] = CertReport{Error: c.Error, At: unixTime(c.LastAttemptUnix), Failures: c.Failures, NextAttempt: unixTime(c.NextAttemptUnix)}
	}
	return out
}

// unixTime is the time of Unix seconds s, zero for zero (never).
func unixTime(s int64) time.Time {
	if s <= 0 {
		return time.Time{}
	}
	return time.Unix(s, 0).UTC()
}
