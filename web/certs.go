package web

import (
	"cmp"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/dt-cdn/dt/dt"
	"github.com/dt-cdn/dt/edgeset"
	"github.com/dt-cdn/dt/heartbeat"
	"github.com/dt-cdn/dt/netcert"
)

// DefaultCertWarn is how long before its expiry a certificate is flagged on the page when
// Config.CertWarn is zero. The issuer renews a certificate with a third of its lifetime left
// (30 days for Let's Encrypt's 90-day ones), so a week ahead means renewals have failed for three
// weeks and leaves the operator days to act. Short-lived certificates are flagged at a sixth of
// their lifetime instead when that is shorter (a day for 6-day ones), half their renewal window.
const DefaultCertWarn = 7 * 24 * time.Hour

// CertSource lists the certificate records of the table (private keys sealed, never opened
// here). *CertIndex implements it. A CertSource that is also a CertErrorSource gives each
// certificate's last error.
type CertSource interface {
	Certificates() []netcert.Record
}

// CertErrorSource gives the last error obtaining or renewing a certificate, by the name a
// certificate is known by (its first name, the key of its record): the place for the issuer's
// reports of failed orders. Names without an error are absent.
type CertErrorSource interface {
	CertErrors() map[string]string
}

// Cert is one row of the page's certificates: a certificate of the table, or a name an edge
// holds a certificate of its own for (its ACME domains, its local certificate).
type Cert struct {
	// Name is the certificate's first name (its record's key in the table), or the edge's name.
	Name string `json:"name"`
	// Names are every name it covers.
	Names []string `json:"names"`
	// Source is "table" for the network's certificates, "edge" for an edge's own.
	Source     string    `json:"source"`
	Issuer     string    `json:"issuer,omitempty"`
	NotAfter   time.Time `json:"not_after,omitzero"`   // zero: no valid certificate known
	RenewAfter time.Time `json:"renew_after,omitzero"` // when the issuer plans to renew
	// Serving are the node ids of the edges whose heartbeats report a valid certificate for Name;
	// Lacking those of the https edges reporting none (edges of earlier releases report no
	// names and are in neither).
	Serving []string `json:"serving"`
	Lacking []string `json:"lacking"`
	// Warn says the certificate has expired, is invalid, or expires within the warning window
	// (Config.CertWarn), or an edge lacks it.
	Warn bool `json:"warn"`
	// Error is the last error obtaining or renewing it (CertReportSource or CertErrorSource);
	// empty: none reported. ErrorAt is when the attempt that failed was made (zero: unknown).
	Error   string    `json:"error,omitempty"`
	ErrorAt time.Time `json:"error_at,omitzero"`
	// Overdue says the certificate is RenewOverdue past its planned renewal and the table still
	// holds it: the issuer is down or failing.
	Overdue bool `json:"overdue,omitempty"`
	// Partial says the record's body is not held here (a lazy node, and a record over its inline
	// body limit): only its first name is known, and Warn counts only the edges lacking it.
	Partial bool `json:"partial,omitempty"`
}

// CertIndex holds the table's certificate records for the page: what they cover, their issuer
// and validity. It never opens a private key. Feed it every event of the node (HandleEvent); its
// methods are safe for concurrent use. A record whose event carries no body (a lazy node, and a
// record over the inline limit) is listed by its key alone.
type CertIndex struct {
	log  *slog.Logger
	mu   sync.Mutex
	recs map[string]netcert.Record // by table key; guarded by mu
}

// NewCertIndex returns an empty index; log receives a line per refused record (nil: none).
func NewCertIndex(log *slog.Logger) *CertIndex {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &CertIndex{log: log, recs: map[string]netcert.Record{}}
}

// HandleEvent takes one event of the node; it does not block.
func (c *CertIndex) HandleEvent(ev dt.Event) {
	name, ok := strings.CutPrefix(ev.Key, netcert.KeyPrefix)
	if !ok {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch ev.Type {
	case dt.EventObjectRemoved:
		delete(c.recs, ev.Key)
	case dt.EventObjectAdded:
		rec := netcert.Record{Names: []string{name}}
		if ev.Object != nil {
			var err error
			if rec, err = netcert.ParseAt(ev.Key, ev.Object); err != nil {
				c.log.Warn("Certificate record refused", slog.String("key", ev.Key), slog.Any("err", err))
				delete(c.recs, ev.Key)
				return
			}
		}
		if _, held := c.recs[ev.Key]; !held && len(c.recs) >= netcert.DefaultMaxRecords {
			c.log.Warn("Certificate record not shown: too many", slog.String("key", ev.Key), slog.Int("max", netcert.DefaultMaxRecords))
			return
		}
		rec.Key, rec.Chain = nil, nil // kept for what the page shows
		c.recs[ev.Key] = rec
	}
}

// Certificates returns the records held, sorted by key, without chain or sealed key.
func (c *CertIndex) Certificates() []netcert.Record {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]netcert.Record, 0, len(c.recs))
	for _, r := range c.recs {
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b netcert.Record) int { return strings.Compare(a.Names[0], b.Names[0]) })
	return out
}

// certRows builds the page's certificates from the table's records and the edges' reports.
func certRows(now time.Time, recs []netcert.Record, reports map[string]CertReport, edges []edgeset.EdgeStatus, warn time.Duration) []Cert {
	rows := make([]Cert, 0, len(recs))
	covered := map[string]bool{}
	for _, r := range recs {
		rep := reports[r.Names[0]]
		c := Cert{Name: r.Names[0], Names: r.Names, Source: "table", Issuer: r.Issuer, Error: rep.Error, Partial: r.V == 0}
		if rep.Error != "" {
			c.ErrorAt = rep.At
		}
		if r.NotAfter != 0 && now.Unix() < r.NotAfter && now.Unix() >= r.NotBefore {
			c.NotAfter = time.Unix(r.NotAfter, 0).UTC()
		}
		if r.RenewAfter != 0 {
			c.RenewAfter = time.Unix(r.RenewAfter, 0).UTC()
			c.Overdue = !now.Before(c.RenewAfter.Add(RenewOverdue))
		}
		for _, n := range r.Names {
			covered[n] = true
		}
		rows = append(rows, withEdges(c, now, edges, warn, time.Duration(r.NotAfter-r.NotBefore)*time.Second))
	}
	return append(rows, ownRows(now, covered, edges, warn)...)
}

// ownRows are the names the edges list in their heartbeats that no table certificate covers:
// their own certificates.
func ownRows(now time.Time, covered map[string]bool, edges []edgeset.EdgeStatus, warn time.Duration) []Cert {
	own := map[string]*Cert{}
	for _, e := range edges {
		if e.Last.Certs == nil {
			continue
		}
		for _, n := range e.Last.Certs.Names {
			if covered[n.Name] {
				continue
			}
			c := own[n.Name]
			if c == nil {
				c = &Cert{Name: n.Name, Names: []string{n.Name}, Source: "edge"}
				own[n.Name] = c
			}
			if exp := time.Unix(n.Exp, 0).UTC(); n.Exp != 0 && exp.After(now) && exp.After(c.NotAfter) {
				c.NotAfter = exp
			}
		}
	}
	rows := make([]Cert, 0, len(own))
	for _, c := range own {
		c.Serving, c.Lacking = []string{}, []string{}
		for _, e := range edges {
			if e.Last.Certs == nil || !slices.ContainsFunc(e.Last.Certs.Names, func(n heartbeat.CertName) bool { return n.Name == c.Name }) {
				continue // only the edges that list the name hold it
			}
			if valid, _ := e.Last.Certs.ValidFor(c.Name, now); valid {
				c.Serving = append(c.Serving, e.Node)
			} else {
				c.Lacking = append(c.Lacking, e.Node)
			}
		}
		c.Warn = warned(*c, now, warn)
		rows = append(rows, *c)
	}
	slices.SortFunc(rows, func(a, b Cert) int { return cmp.Compare(a.Name, b.Name) })
	return rows
}

// withEdges fills in which edges serve c's first name and whether it needs attention; lifetime (zero when
// unknown) narrows the warning window for short-lived certificates.
func withEdges(c Cert, now time.Time, edges []edgeset.EdgeStatus, warn, lifetime time.Duration) Cert {
	c.Serving, c.Lacking = []string{}, []string{}
	for _, e := range edges {
		if valid, known := e.Last.Certs.ValidFor(c.Name, now); known && valid {
			c.Serving = append(c.Serving, e.Node)
		} else if known {
			c.Lacking = append(c.Lacking, e.Node)
		}
	}
	if lifetime > 0 {
		warn = min(warn, lifetime/6)
	}
	c.Warn = warned(c, now, warn)
	if c.Partial {
		c.Warn = len(c.Lacking) > 0 || c.Error != "" || c.Overdue
	}
	return c
}

// warned says whether c needs attention: no valid certificate, expiry within warn, an edge
// lacking it, or an error.
func warned(c Cert, now time.Time, warn time.Duration) bool {
	return c.NotAfter.IsZero() || c.NotAfter.Sub(now) < warn || len(c.Lacking) > 0 || c.Error != "" || c.Overdue
}

// certReports returns src's reports: a CertReportSource's, else a CertErrorSource's errors
// (without times); nil when it has neither.
func certReports(src CertSource) map[string]CertReport {
	if rs, ok := src.(CertReportSource); ok {
		return rs.CertReports()
	}
	es, ok := src.(CertErrorSource)
	if !ok {
		return nil
	}
	out := map[string]CertReport{}
	for name, e := range es.CertErrors() {
		out[name] = CertReport{Error: e}
	}
	return out
}
