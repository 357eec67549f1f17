package issuer

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/dt-cdn/dt/challenge"
)

// pollInterval is how often the issuer asks again whether the network answers a challenge.
const pollInterval = 250 * time.Millisecond

// waitAnswered waits until every authoritative DNS server answers p's TXT values, every live
// edge reports in its heartbeats the digest of the challenge records the issuer holds
// (heartbeat.Heartbeat.ACMEDigest; edges of releases that report none are not waited for), and
// every edge of Config.EdgeHTTP answers p's tokens; or until Config.PropagationTimeout passes.
// Then it returns, and the CA validates what it can.
func (m *manager) waitAnswered(ctx context.Context, p pending) {
	ctx, cancel := context.WithTimeout(ctx, m.cfg.PropagationTimeout)
	defer cancel()
	for domain, txt := range p.dns01 {
		for _, ns := range m.nameservers(ctx, domain) {
			m.poll(ctx, "dns-01", domain, ns, func() bool { return answersTXT(ctx, ns, domain, txt) })
		}
	}
	if len(p.http01) > 0 && m.edges != nil {
		digest := liveChallengeDigest(ctx, m.table, m.cfg.Now())
		m.poll(ctx, "http-01", "", "every live edge (heartbeats)", func() bool {
			return len(m.edges.lagging(ctx, digest, m.cfg.Now())) == 0
		})
	}
	for _, r := range p.http01 {
		for _, addr := range m.cfg.EdgeHTTP {
			m.poll(ctx, "http-01", r.Domain, addr, func() bool { return answersHTTP01(ctx, m.http01Client, addr, r) })
		}
	}
}

// poll calls ok until it holds or ctx ends, and logs the latter.
func (m *manager) poll(ctx context.Context, kind, domain, server string, ok func() bool) {
	for !ok() {
		if sleep(ctx, pollInterval) != nil {
			m.log.Warn("Challenge not answered everywhere before the deadline; asking the CA to validate anyway",
				slog.String("challenge", kind), slog.String("domain", domain), slog.String("server", server))
			return
		}
	}
}

// nameservers returns the DNS servers to ask for domain's challenge: Config.Nameservers, or
// the NS records of domain's zone as the world sees them, on port 53.
func (m *manager) nameservers(ctx context.Context, domain string) []string {
	if len(m.cfg.Nameservers) > 0 {
		return m.cfg.Nameservers
	}
	for name := domain; strings.Contains(name, "."); name = parentOf(name) {
		nss, err := net.DefaultResolver.LookupNS(ctx, name)
		if err != nil || len(nss) == 0 {
			continue
		}
		var out []string
		for _, ns := range nss {
			out = append(out, net.JoinHostPort(strings.TrimSuffix(ns.Host, "."), "53"))
		}
		return out
	}
	m.log.Warn("No nameserver found to check the DNS-01 answer", slog.String("domain", domain))
	return nil
}

// answersTXT reports whether the server at addr answers every value of txt at domain's
// "_acme-challenge" name.
func answersTXT(ctx context.Context, addr, domain string, txt []string) bool {
	q := new(dns.Msg)
	q.SetQuestion(dns.Fqdn(challenge.DNSName(domain)), dns.TypeTXT)
	q.RecursionDesired = false
	in, _, err := (&dns.Client{Net: "tcp", Timeout: 2 * time.Second}).ExchangeContext(ctx, q, addr)
	if err != nil || in.Rcode != dns.RcodeSuccess {
		return false
	}
	var got []string
	for _, rr := range in.Answer {
		if t, ok := rr.(*dns.TXT); ok {
			got = append(got, strings.Join(t.Txt, ""))
		}
	}
	for _, v := range txt {
		if !slices.Contains(got, v) {
			return false
		}
	}
	return true
}

// answersHTTP01 reports whether the edge at addr answers r's token with its key authorization.
func answersHTTP01(ctx context.Context, client *http.Client, addr string, r challenge.HTTP01) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/.well-known/acme-challenge/"+r.Token, nil)
	if err != nil {
		return false
	}
	req.Host = r.Domain
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, challenge.MaxKeyAuthorizationLen+2))
	return err == nil && resp.StatusCode == http.StatusOK && strings.TrimSpace(string(b)) == r.KeyAuthorization
}
