package issuer

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"golang.org/x/crypto/acme"

	"github.com/dt-cdn/dt/netcert"
)

// MaxAccountBytes bounds the account record's JSON: a URL or two and a sealed P-256 key take
// under 1 KiB.
const MaxAccountBytes = 4 << 10

// ErrInvalidAccount is wrapped by every error of ParseAccount.
var ErrInvalidAccount = errors.New("issuer: invalid account record")

// AccountRecord is the record under AccountKey: the ACME account every issuer of the network
// uses, so that a successor continues with the same account. Its JSON:
//
//	{"v":1,"directory":"https://acme-v02.api.letsencrypt.org/directory","uri":"<account URL>","key":"<base64 sealed PKCS #8>"}
//
// Key is the account's private key in PKCS #8, sealed by netcert's Sealer for AccountKey, so
// that only a holder of the network key can use the account.
type AccountRecord struct {
	V         int    `json:"v"`
	Directory string `json:"directory"`
	URI       string `json:"uri"`
	Key       []byte `json:"key"`
}

// ParseAccount decodes and checks an account record from untrusted bytes; the key is opened
// by open.
func ParseAccount(b []byte) (AccountRecord, error) {
	if len(b) > MaxAccountBytes {
		return AccountRecord{}, fmt.Errorf("%w: %d bytes, at most %d", ErrInvalidAccount, len(b), MaxAccountBytes)
	}
	var r AccountRecord
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&r); err != nil {
		return AccountRecord{}, fmt.Errorf("%w: %w", ErrInvalidAccount, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return AccountRecord{}, fmt.Errorf("%w: data after the JSON object", ErrInvalidAccount)
	}
	if r.V != 1 || r.Directory == "" || r.URI == "" || len(r.Key) == 0 {
		return AccountRecord{}, fmt.Errorf("%w: want v 1, a directory, a URI and a key", ErrInvalidAccount)
	}
	return r, nil
}

// open returns the account's private key.
func (r AccountRecord) open(s *netcert.Sealer) (crypto.Signer, error) {
	der, err := s.Open(AccountKey, r.Key)
	if err != nil {
		return nil, err
	}
	key, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("%w: key: %w", ErrInvalidAccount, err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%w: key of type %T cannot sign", ErrInvalidAccount, key)
	}
	return signer, nil
}

// account returns an ACME client with the network's account at the configured directory: the
// one in the table when it opens and names that directory, else a new one registered and
// written to the table.
func (m *manager) account(ctx context.Context) (*acme.Client, error) {
	c := &acme.Client{DirectoryURL: m.cfg.Directory, HTTPClient: m.http, UserAgent: "dt-issuer"}
	if b, err := m.table.Get(ctx, AccountKey); err == nil {
		r, perr := ParseAccount(b)
		if perr != nil {
			m.metrics.refused.WithLabelValues("account").Inc()
		}
		if perr == nil && r.Directory == m.cfg.Directory {
			if key, oerr := r.open(m.sealer); oerr == nil {
				c.Key, c.KID = key, acme.KeyID(r.URI)
				return c, nil
			} else {
				m.log.Warn("ACME account in the table does not open; registering a new one", "err", oerr)
			}
		}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("issuer: account key: %w", err)
	}
	c.Key = key
	acct := &acme.Account{}
	if m.cfg.Email != "" {
		acct.Contact = []string{"mailto:" + m.cfg.Email}
	}
	got, err := c.Register(ctx, acct, acme.AcceptTOS)
	if err != nil {
		return nil, fmt.Errorf("issuer: register ACME account at %s: %w", m.cfg.Directory, err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("issuer: encode account key: %w", err)
	}
	body, err := json.Marshal(AccountRecord{V: 1, Directory: m.cfg.Directory, URI: got.URI, Key: m.sealer.Seal(AccountKey, der)})
	if err != nil {
		return nil, err
	}
	if err := m.table.Put(ctx, AccountKey, body); err != nil {
		return nil, fmt.Errorf("issuer: write account: %w", err)
	}
	m.log.Info("ACME account registered", "directory", m.cfg.Directory, "uri", got.URI)
	return c, nil
}
