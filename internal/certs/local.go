package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/renameio/v2"
)

// localCertFile names the local certificate and its key in CacheDir. A '+' cannot occur in a
// host name, so the file never collides with autocert's entries, which are named after domains
// (autocert's own extra entries use the same trick: "acme_account+key").
const localCertFile = "local+selfsigned.pem"

const (
	// localValidity is how long a local certificate is valid. Browsers cap publicly trusted
	// certificates far lower, but they do not apply the cap to a certificate the user accepted
	// by hand, and a year keeps that exception alive long enough to be worth making.
	localValidity = 365 * 24 * time.Hour
	// localRenewBefore is how close to expiry a stored local certificate is replaced at start.
	localRenewBefore = 30 * 24 * time.Hour
	// localBackdate covers clients whose clock runs behind this node's.
	localBackdate = time.Hour
)

// localNames are the names the local certificate covers: the loopback names, by which local
// tools reach the node, and the machine's host name, by which other machines on the LAN do.
func localNames() []string {
	names := []string{"localhost", "127.0.0.1", "::1"}
	h, err := os.Hostname()
	h = strings.TrimSuffix(strings.ToLower(h), ".")
	if err == nil && h != "localhost" && validHostName(h) {
		names = append(names, h)
	}
	return names
}

// loadLocal returns the local certificate kept in dir, or generates and stores a new one when
// there is none, it cannot be decoded, it is about to expire or it misses one of names. With
// dir empty the certificate is generated and kept in memory only.
func loadLocal(dir string, now time.Time, names []string, log *slog.Logger) (*tls.Certificate, error) {
	if dir == "" {
		cert, _, err := generateLocal(now, names)
		return cert, err
	}
	path := filepath.Join(dir, localCertFile)
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		// First start: nothing to reuse.
	case err != nil:
		return nil, fmt.Errorf("certs: read local certificate: %w", err)
	default:
		cert, err := decodeLocal(data)
		if err == nil {
			problem := reuseProblem(cert.Leaf, now, names)
			if problem == "" {
				log.Info("Reusing local certificate", slog.String("file", path),
					slog.Time("not_after", cert.Leaf.NotAfter))
				return cert, nil
			}
			err = errors.New(problem)
		}
		// A local certificate is cheap to replace, and refusing to start over it would help
		// nobody; the log says why the old one went.
		log.Warn("Replacing local certificate", slog.String("file", path), slog.Any("reason", err))
	}
	cert, pemData, err := generateLocal(now, names)
	if err != nil {
		return nil, err
	}
	if err := writeFileSync(path, pemData); err != nil {
		return nil, fmt.Errorf("certs: store local certificate: %w", err)
	}
	log.Info("Generated local certificate", slog.String("file", path),
		slog.Any("names", names), slog.Time("not_after", cert.Leaf.NotAfter))
	return cert, nil
}

// decodeLocal parses the PEM file written by generateLocal: a private key block and a
// certificate block that belong together.
func decodeLocal(data []byte) (*tls.Certificate, error) {
	cert, err := tls.X509KeyPair(data, data)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	if cert.Leaf == nil {
		leaf, err := x509.ParseCertificate(cert.Certificate[0])
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
		}
		cert.Leaf = leaf
	}
	return &cert, nil
}

// reuseProblem says why leaf should not be served any more at now, or "" when it is fine.
func reuseProblem(leaf *x509.Certificate, now time.Time, names []string) string {
	if now.Before(leaf.NotBefore) {
		return "not valid before " + leaf.NotBefore.Format(time.RFC3339)
	}
	if leaf.NotAfter.Sub(now) < localRenewBefore {
		return "expires " + leaf.NotAfter.Format(time.RFC3339)
	}
	for _, n := range names {
		if leaf.VerifyHostname(n) != nil {
			return "does not cover " + n
		}
	}
	return ""
}

// generateLocal makes a self-signed ECDSA P-256 certificate for names (DNS names and IP
// addresses) valid for localValidity from now, and returns it with its PEM encoding: the
// PKCS #8 private key followed by the certificate, as autocert stores its own entries.
func generateLocal(now time.Time, names []string) (*tls.Certificate, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("certs: generate local key: %w", err)
	}
	// RFC 5280 §4.1.2.2: a positive serial of at most 20 octets; 128 random bits make it
	// unique, which browsers check even among self-signed certificates.
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, nil, fmt.Errorf("certs: generate serial: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "dt local certificate"},
		NotBefore:             now.Add(-localBackdate),
		NotAfter:              now.Add(localValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("certs: create local certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("certs: encode local key: %w", err)
	}
	pemData := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	pemData = append(pemData, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	cert, err := decodeLocal(pemData)
	if err != nil {
		return nil, nil, err
	}
	return cert, pemData, nil
}

// writeFileSync replaces path with data, mode 0600 whatever the umask: it holds a private key.
// The data is written to a temporary file, fsynced and renamed over path, then the directory is
// fsynced so that the rename itself survives a crash.
func writeFileSync(path string, data []byte) error {
	// The temporary file stays beside path, never in a shared $TMPDIR.
	f, err := renameio.NewPendingFile(path, renameio.WithStaticPermissions(0o600),
		renameio.WithTempDir(filepath.Dir(path)))
	if err != nil {
		return err
	}
	defer f.Cleanup()
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.CloseAtomicallyReplace(); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	if err := d.Sync(); err != nil {
		d.Close()
		return err
	}
	return d.Close()
}
