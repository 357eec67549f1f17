package issuer

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"strings"
	"time"
)

// Status is the record under StatusKey, written by the issuer holding the lease whenever a
// certificate's state changes, for dashboards and operators. Its JSON:
//
//	{"v":1,"holder":"<node id>","updated":1767225600,"certs":[{"name":"*.cdn.example.com",
//	 "names":["*.cdn.example.com","cdn.example.com"],"not_after":1775001600,
//	 "renew_after":1771000000,"last_attempt":1767225600,"next_attempt":0,"failures":0,
//	 "error":""}]}
//
// Times are Unix seconds, zero for never. A certificate with an error and failures above zero
// is retried at next_attempt. Readers ignore fields they do not know.
type Status struct {
	V       int          `json:"v"`
	Holder  string       `json:"holder"`
	Updated int64        `json:"updated"`
	Certs   []CertStatus `json:"certs"`
}

// CertStatus is one certificate's state in Status.
type CertStatus struct {
	Name        string    `json:"name"`
	Site        string    `json:"site,omitempty"`
	Names       []string  `json:"names"`
	NotAfter    time.Time `json:"-"`
	RenewAfter  time.Time `json:"-"`
	LastAttempt time.Time `json:"-"`
	NextAttempt time.Time `json:"-"`
	Failures    int       `json:"failures"`
	Error       string    `json:"error,omitempty"`

	NotAfterUnix    int64 `json:"not_after"`
	RenewAfterUnix  int64 `json:"renew_after"`
	LastAttemptUnix int64 `json:"last_attempt"`
	NextAttemptUnix int64 `json:"next_attempt"`
}

func unix(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}

// snapshot returns the state of the certificates of groups, sorted by name.
func (m *manager) snapshot(groups []Group) []CertStatus {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []CertStatus
	for _, g := range groups {
		st, ok := m.states[g.Key()]
		if !ok {
			continue
		}
		c := *st
		c.NotAfterUnix, c.RenewAfterUnix = unix(c.NotAfter), unix(c.RenewAfter)
		c.LastAttemptUnix, c.NextAttemptUnix = unix(c.LastAttempt), unix(c.NextAttempt)
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b CertStatus) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// writeStatus writes the status record when the certificates' state differs from the table's.
func (m *manager) writeStatus(ctx context.Context, groups []Group) {
	certs := m.snapshot(groups)
	want, _ := json.Marshal(certs)
	if b, err := m.table.Get(ctx, StatusKey); err == nil {
		var old Status
		if json.Unmarshal(b, &old) == nil && old.Holder == m.cfg.holder {
			if have, _ := json.Marshal(old.Certs); bytes.Equal(have, want) {
				return
			}
		}
	}
	body, err := json.Marshal(Status{V: 1, Holder: m.cfg.holder, Updated: m.cfg.Now().Unix(), Certs: certs})
	if err != nil {
		return
	}
	if err := m.table.Put(ctx, StatusKey, body); err != nil && ctx.Err() == nil {
		m.log.Warn("Issuer status not written", slog.Any("err", err))
	}
}
