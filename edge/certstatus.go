package edge

import (
	"strings"
	"time"

	"github.com/dt-cdn/dt/heartbeat"
	"github.com/dt-cdn/dt/internal/certs"
	"github.com/dt-cdn/dt/netcert"
)

// certStatus says which certificate an HTTPS edge serves for each of its names: the table's
// (netcert.Store) first, as the TLS configuration asks it, else the edge's own (autocert for
// Config.Domains, or the local certificate for its public URL's host).
type certStatus struct {
	table *netcert.Store
	own   *certs.Manager
	host  string // the public URL's host, lower case
	now   func() time.Time
}

// notAfter returns the expiry of the valid certificate served for name, zero for none.
func (s certStatus) notAfter(name string) time.Time {
	now := s.now()
	var t time.Time
	if c := s.table.Lookup(name); c != nil {
		t = c.Leaf.NotAfter
	}
	if own, err := s.own.Expiry(name); err == nil && own.After(now) && own.After(t) {
		t = own
	}
	return t
}

// expiry is the heartbeat's CertExpiry: that of the certificate served for the public URL's host;
// with none valid, that of the edge's own even if expired, so that receivers see how stale it is.
func (s certStatus) expiry() time.Time {
	if t := s.notAfter(s.host); !t.IsZero() {
		return t
	}
	t, _ := s.own.Expiry(s.host)
	return t
}

// states returns every name the edge serves and its certificate's expiry: the names of the
// table's certificates, its ACME domains and its public URL's host.
func (s certStatus) states() []heartbeat.CertState {
	names := s.table.Names()
	out := make([]heartbeat.CertState, 0, len(names)+2)
	for _, n := range names {
		out = append(out, heartbeat.CertState{Name: n.Name, NotAfter: n.NotAfter})
	}
	for _, d := range append(s.own.Domains(), s.host) {
		if d = strings.ToLower(d); d != "" {
			out = append(out, heartbeat.CertState{Name: d, NotAfter: s.notAfter(d)})
		}
	}
	return out
}
