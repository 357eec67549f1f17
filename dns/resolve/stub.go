package resolve

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/miekg/dns"
)

// DefaultResolvConf is where the system names its resolvers.
const DefaultResolvConf = "/etc/resolv.conf"

// Stub asks recursive resolvers, in order, until one answers: a node's view of the DNS. It sends
// queries with recursion desired and an EDNS0 buffer of 1232 bytes, and retries a truncated answer
// over TCP. A SERVFAIL or REFUSED moves on to the next server; the last answer or error counts.
type Stub struct {
	// Servers are the resolvers' addresses (host:port).
	Servers []string
	// Timeout bounds each exchange. Zero: 2 s.
	Timeout time.Duration
}

// SystemStub returns a stub over the resolvers of a resolv.conf file (DefaultResolvConf when path
// is empty).
func SystemStub(path string) (*Stub, error) {
	if path == "" {
		path = DefaultResolvConf
	}
	cc, err := dns.ClientConfigFromFile(path)
	if err != nil {
		return nil, fmt.Errorf("resolve: read %s: %w", path, err)
	}
	if len(cc.Servers) == 0 {
		return nil, fmt.Errorf("resolve: %s names no nameserver", path)
	}
	s := &Stub{Timeout: time.Duration(cc.Timeout) * time.Second}
	for _, srv := range cc.Servers {
		s.Servers = append(s.Servers, net.JoinHostPort(srv, cc.Port))
	}
	return s, nil
}

// Lookup resolves name of type qtype. It implements LookupFunc.
func (s *Stub) Lookup(ctx context.Context, name string, qtype uint16) (*dns.Msg, error) {
	if len(s.Servers) == 0 {
		return nil, errors.New("resolve: no resolver configured")
	}
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	q := new(dns.Msg)
	q.SetQuestion(name, qtype)
	q.SetEdns0(1232, false)
	var (
		last *dns.Msg
		errs []error
	)
	for _, srv := range s.Servers {
		m, err := exchange(ctx, q, srv, timeout)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		last = m
		if m.Rcode != dns.RcodeServerFailure && m.Rcode != dns.RcodeRefused {
			return m, nil
		}
	}
	if last != nil {
		return last, nil
	}
	return nil, errors.Join(errs...)
}

// exchange asks one server over UDP, and over TCP when the answer comes back truncated.
func exchange(ctx context.Context, q *dns.Msg, server string, timeout time.Duration) (*dns.Msg, error) {
	m, _, err := (&dns.Client{Net: "udp", Timeout: timeout}).ExchangeContext(ctx, q, server)
	if err == nil && m.Truncated {
		m, _, err = (&dns.Client{Net: "tcp", Timeout: timeout}).ExchangeContext(ctx, q, server)
	}
	if err != nil {
		return nil, fmt.Errorf("resolve: ask %s: %w", server, err)
	}
	if m.Id != q.Id || len(m.Question) != 1 || !equalQuestion(m.Question[0], q.Question[0]) {
		return nil, fmt.Errorf("resolve: %s answered another question", server)
	}
	return m, nil
}

func equalQuestion(a, b dns.Question) bool {
	return a.Qtype == b.Qtype && a.Qclass == b.Qclass && dns.CanonicalName(a.Name) == dns.CanonicalName(b.Name)
}
