package issuer

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"golang.org/x/crypto/acme"

	"github.com/dt-cdn/dt/challenge"
	"github.com/dt-cdn/dt/netcert"
)

// ErrNoChallenge is returned when the CA offers no challenge the issuer can answer for a name:
// DNS-01 for a name in a zone dt's DNS serves, HTTP-01 for any other name but a wildcard.
var ErrNoChallenge = errors.New("issuer: no challenge the network can answer")

// pending is what an order asks the network to answer, and the challenges to accept once it
// does.
type pending struct {
	dns01  map[string][]string         // domain without "*." → TXT values
	http01 map[string]challenge.HTTP01 // token → record
	accept []*acme.Challenge
	authz  []string // URLs of the authorizations to wait for
}

// obtain orders a certificate for g, answers its challenges through the table, and writes the
// certificate record. It deletes the challenge records it wrote, whatever the outcome.
func (m *manager) obtain(ctx context.Context, c *acme.Client, g Group, zones []string) (netcert.Record, error) {
	o, err := c.AuthorizeOrder(ctx, acme.DomainIDs(g.Names...))
	if err != nil {
		return netcert.Record{}, fmt.Errorf("issuer: new order for %s: %w", g.Names[0], err)
	}
	m.metrics.orders.Inc()
	p, err := m.challenges(ctx, c, o, zones)
	if err != nil {
		return netcert.Record{}, err
	}
	keys, err := m.writeChallenges(ctx, p)
	defer m.deleteChallenges(keys)
	if err != nil {
		return netcert.Record{}, err
	}
	m.waitAnswered(ctx, p)
	for _, ch := range p.accept {
		if _, err := c.Accept(ctx, ch); err != nil {
			return netcert.Record{}, fmt.Errorf("issuer: accept %s challenge: %w", ch.Type, err)
		}
	}
	for _, u := range p.authz {
		if _, err := c.WaitAuthorization(ctx, u); err != nil {
			return netcert.Record{}, fmt.Errorf("issuer: authorization for %s: %w", g.Names[0], err)
		}
	}
	return m.finalize(ctx, c, o, g)
}

// challenges picks, for every pending authorization of o, the challenge the network answers:
// DNS-01 for a name in zones (and any wildcard), HTTP-01 otherwise.
func (m *manager) challenges(ctx context.Context, c *acme.Client, o *acme.Order, zones []string) (pending, error) {
	p := pending{dns01: map[string][]string{}, http01: map[string]challenge.HTTP01{}}
	expires := m.cfg.Now().Add(m.cfg.ChallengeTTL)
	for _, u := range o.AuthzURLs {
		z, err := c.GetAuthorization(ctx, u)
		if err != nil {
			return p, fmt.Errorf("issuer: authorization: %w", err)
		}
		if z.Status == acme.StatusValid {
			continue
		}
		domain := strings.ToLower(z.Identifier.Value)
		want := "http-01"
		if z.Wildcard || inZones(domain, zones) {
			want = "dns-01"
		}
		ch := findChallenge(z.Challenges, want)
		if ch == nil {
			return p, fmt.Errorf("%w: %s for %s", ErrNoChallenge, want, domain)
		}
		if want == "dns-01" {
			v, err := c.DNS01ChallengeRecord(ch.Token)
			if err != nil {
				return p, err
			}
			p.dns01[domain] = append(p.dns01[domain], v)
		} else {
			ka, err := c.HTTP01ChallengeResponse(ch.Token)
			if err != nil {
				return p, err
			}
			p.http01[ch.Token] = challenge.HTTP01{V: challenge.Version, Domain: domain, Token: ch.Token,
				KeyAuthorization: ka, Expires: expires.Unix()}
		}
		p.accept, p.authz = append(p.accept, ch), append(p.authz, u)
	}
	return p, nil
}

func findChallenge(chs []*acme.Challenge, typ string) *acme.Challenge {
	for _, ch := range chs {
		if ch.Type == typ {
			return ch
		}
	}
	return nil
}

// writeChallenges writes p's challenge records and returns their keys, including those written
// before an error.
func (m *manager) writeChallenges(ctx context.Context, p pending) ([]string, error) {
	var keys []string
	expires := m.cfg.Now().Add(m.cfg.ChallengeTTL)
	for domain, txt := range p.dns01 {
		r, err := challenge.NewDNS01(domain, txt, expires)
		if err != nil {
			return keys, err
		}
		if err := m.put(ctx, challenge.DNS01Key(domain), r.Marshal); err != nil {
			return keys, err
		}
		keys = append(keys, challenge.DNS01Key(domain))
	}
	for token, r := range p.http01 {
		if err := m.put(ctx, challenge.HTTP01Key(token), r.Marshal); err != nil {
			return keys, err
		}
		keys = append(keys, challenge.HTTP01Key(token))
	}
	return keys, nil
}

func (m *manager) put(ctx context.Context, key string, marshal func() ([]byte, error)) error {
	b, err := marshal()
	if err != nil {
		return err
	}
	if err := m.table.Put(ctx, key, b); err != nil {
		return fmt.Errorf("issuer: write %s: %w", key, err)
	}
	return nil
}

// deleteChallenges removes the challenge records once the CA no longer needs them. It runs
// even when the order's context has ended, bounded by its own deadline.
func (m *manager) deleteChallenges(keys []string) {
	if len(keys) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := m.table.DeleteMany(ctx, keys); err != nil {
		m.log.Warn("Challenge records not deleted; they expire by themselves", slog.Any("err", err))
	}
}

// finalize waits for o to be ready, sends a CSR for a fresh ECDSA P-256 key, and writes the
// certificate record.
func (m *manager) finalize(ctx context.Context, c *acme.Client, o *acme.Order, g Group) (netcert.Record, error) {
	// The order as WaitOrder returns it lacks its URI (a POST-as-GET answer has no
	// Location), which finalizing needs; o keeps it.
	if _, err := c.WaitOrder(ctx, o.URI); err != nil {
		return netcert.Record{}, fmt.Errorf("issuer: order for %s: %w", g.Names[0], err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return netcert.Record{}, fmt.Errorf("issuer: certificate key: %w", err)
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: g.Names[len(g.Names)-1]}, DNSNames: g.Names}, key)
	if err != nil {
		return netcert.Record{}, fmt.Errorf("issuer: CSR: %w", err)
	}
	chain, _, err := c.CreateCertFromOrder(ctx, o, csr, true)
	if err != nil {
		return netcert.Record{}, fmt.Errorf("issuer: finalize order for %s: %w", g.Names[0], err)
	}
	leaf, err := x509.ParseCertificate(chain[0])
	if err != nil {
		return netcert.Record{}, fmt.Errorf("issuer: certificate for %s: %w", g.Names[0], err)
	}
	r, err := netcert.NewRecord(chain, key, m.sealer, m.renewAt(ctx, leaf))
	if err != nil {
		return netcert.Record{}, err
	}
	if !slices.Equal(r.Names, g.Names) {
		return netcert.Record{}, fmt.Errorf("issuer: the CA issued %v for %v", r.Names, g.Names)
	}
	if err := m.put(ctx, r.TableKey(), r.Marshal); err != nil {
		return netcert.Record{}, err
	}
	return r, nil
}
