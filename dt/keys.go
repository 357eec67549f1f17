package dt

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Names of the files in a keys directory, as written by GenerateKeys.
const (
	NetworkKeyFile   = "network.key" // the shared network key: 64 hex digits
	MasterKeyFile    = "master.key"  // a master's Ed25519 seed: 64 hex digits (secret)
	MasterPubKeyFile = "master.pub"  // trusted master public keys: 64 hex digits per line

	PublisherKeyFile    = "publisher.key" // a publisher's Ed25519 seed: 64 hex digits (secret)
	PublisherPubKeyFile = "publisher.pub" // its public key, 64 hex digits: what a master grants

	IssuerKeyFile    = "issuer.key" // a certificate issuer's Ed25519 seed: 64 hex digits (secret)
	IssuerPubKeyFile = "issuer.pub" // its public key, 64 hex digits: what a master grants
)

// NetworkKey is the secret every node of one network shares. It keys the transport (Noise PSK) and
// names the table; it does not let its holder write records (that takes a master key).
type NetworkKey [32]byte

// TableID names the table a network key belongs to. It is bound into every handshake and record, so
// records of one network are never valid in another.
func (k NetworkKey) TableID() [16]byte {
	sum := sha256.Sum256(append([]byte("dt table id v1\x00"), k[:]...))
	var id [16]byte
	copy(id[:], sum[:])
	return id
}

// Keys are the contents of a keys directory.
type Keys struct {
	Network NetworkKey
	// Masters are the public keys whose records every node accepts.
	Masters []ed25519.PublicKey
	// Master is this holder's master signing key, or nil when master.key is absent.
	Master ed25519.PrivateKey
	// Publisher is this holder's publisher signing key, or nil when publisher.key is absent. It
	// writes only what a master granted it (see GrantKeyPrefix).
	Publisher ed25519.PrivateKey
}

// GeneratePublisherKey writes a new publisher key pair into dir (created with mode 0700 if
// missing): publisher.key (mode 0600) and publisher.pub. It refuses to overwrite either. The
// key writes nothing until a master grants it a scope; a publisher's keys directory also needs
// the network's network.key and master.pub.
func GeneratePublisherKey(dir string, random io.Reader) (ed25519.PublicKey, error) {
	return generateGranteeKey(dir, PublisherKeyFile, PublisherPubKeyFile, random)
}

// GenerateIssuerKey writes a new certificate issuer key pair into dir, as GeneratePublisherKey
// does: issuer.key (mode 0600) and issuer.pub. The key writes nothing until a master grants it
// the certificate scope (dt grant --certificates).
func GenerateIssuerKey(dir string, random io.Reader) (ed25519.PublicKey, error) {
	return generateGranteeKey(dir, IssuerKeyFile, IssuerPubKeyFile, random)
}

// LoadIssuerKey reads issuer.key from dir; it returns nil and no error when the file is absent.
func LoadIssuerKey(dir string) (ed25519.PrivateKey, error) {
	return loadSeedFile(filepath.Join(dir, IssuerKeyFile))
}

// generateGranteeKey writes a key pair for a grantee into dir under the two names given,
// refusing to overwrite either.
func generateGranteeKey(dir, keyFile, pubFile string, random io.Reader) (ed25519.PublicKey, error) {
	if random == nil {
		random = rand.Reader
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("dt: create keys directory: %w", err)
	}
	for _, name := range []string{keyFile, pubFile} {
		if _, err := os.Lstat(filepath.Join(dir, name)); err == nil {
			return nil, fmt.Errorf("dt: %s: %w", filepath.Join(dir, name), ErrKeyExists)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("dt: check %s: %w", name, err)
		}
	}
	pub, priv, err := ed25519.GenerateKey(random)
	if err != nil {
		return nil, fmt.Errorf("dt: generate %s: %w", keyFile, err)
	}
	if err := writeNewFile(filepath.Join(dir, keyFile), []byte(hex.EncodeToString(priv.Seed())+"\n"), 0o600); err != nil {
		return nil, err
	}
	if err := writeNewFile(filepath.Join(dir, pubFile), []byte(hex.EncodeToString(pub)+"\n"), 0o644); err != nil {
		return nil, err
	}
	return pub, nil
}

// GenerateKeys writes a new network key and master key pair into dir (created with mode 0700 if
// missing). Secret files get mode 0600. It refuses to overwrite any existing key file.
func GenerateKeys(dir string, random io.Reader) error {
	if random == nil {
		random = rand.Reader
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("dt: create keys directory: %w", err)
	}
	for _, name := range []string{NetworkKeyFile, MasterKeyFile, MasterPubKeyFile} {
		if _, err := os.Lstat(filepath.Join(dir, name)); err == nil {
			return fmt.Errorf("dt: %s: %w", filepath.Join(dir, name), ErrKeyExists)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("dt: check %s: %w", name, err)
		}
	}
	var netKey NetworkKey
	if _, err := io.ReadFull(random, netKey[:]); err != nil {
		return fmt.Errorf("dt: generate network key: %w", err)
	}
	pub, priv, err := ed25519.GenerateKey(random)
	if err != nil {
		return fmt.Errorf("dt: generate master key: %w", err)
	}
	files := []struct {
		name string
		data string
		mode os.FileMode
	}{
		{NetworkKeyFile, hex.EncodeToString(netKey[:]) + "\n", 0o600},
		{MasterKeyFile, hex.EncodeToString(priv.Seed()) + "\n", 0o600},
		{MasterPubKeyFile, hex.EncodeToString(pub) + "\n", 0o644},
	}
	for _, f := range files {
		if err := writeNewFile(filepath.Join(dir, f.name), []byte(f.data), f.mode); err != nil {
			return err
		}
	}
	return nil
}

// writeNewFile creates path exclusively (O_EXCL: never overwrite), writes data and syncs it.
func writeNewFile(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return fmt.Errorf("dt: create %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("dt: write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("dt: sync %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("dt: close %s: %w", path, err)
	}
	return nil
}

// LoadKeys reads a keys directory. network.key is required; master.pub lists the trusted masters
// (it may be absent on a network that carries messages only); master.key is optional and, when
// present, must match one of the trusted public keys; publisher.key is optional.
func LoadKeys(dir string) (Keys, error) {
	var keys Keys
	raw, err := os.ReadFile(filepath.Join(dir, NetworkKeyFile))
	if err != nil {
		return keys, fmt.Errorf("dt: read network key: %w", err)
	}
	b, err := decodeHexKey(raw, 32)
	if err != nil {
		return keys, fmt.Errorf("dt: %s: %w", filepath.Join(dir, NetworkKeyFile), err)
	}
	copy(keys.Network[:], b)

	raw, err = os.ReadFile(filepath.Join(dir, MasterPubKeyFile))
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return keys, fmt.Errorf("dt: read master public keys: %w", err)
	default:
		for i, line := range strings.Split(string(raw), "\n") {
			line = strings.TrimSpace(line)
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			b, err := decodeHexKey([]byte(line), ed25519.PublicKeySize)
			if err != nil {
				return keys, fmt.Errorf("dt: %s:%d: %w", filepath.Join(dir, MasterPubKeyFile), i+1, err)
			}
			keys.Masters = append(keys.Masters, ed25519.PublicKey(b))
		}
	}

	raw, err = os.ReadFile(filepath.Join(dir, MasterKeyFile))
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return keys, fmt.Errorf("dt: read master key: %w", err)
	default:
		seed, err := decodeHexKey(raw, ed25519.SeedSize)
		if err != nil {
			return keys, fmt.Errorf("dt: %s: %w", filepath.Join(dir, MasterKeyFile), err)
		}
		keys.Master = ed25519.NewKeyFromSeed(seed)
		pub := keys.Master.Public().(ed25519.PublicKey)
		trusted := false
		for _, m := range keys.Masters {
			trusted = trusted || bytes.Equal(m, pub)
		}
		if !trusted {
			return keys, fmt.Errorf("dt: %s: %w", dir, ErrMasterNotTrusted)
		}
	}
	keys.Publisher, err = loadSeedFile(filepath.Join(dir, PublisherKeyFile))
	return keys, err
}

// loadSeedFile reads an Ed25519 seed in hex from path; nil and no error when it is absent.
func loadSeedFile(path string) (ed25519.PrivateKey, error) {
	raw, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("dt: read %s: %w", path, err)
	}
	seed, err := decodeHexKey(raw, ed25519.SeedSize)
	if err != nil {
		return nil, fmt.Errorf("dt: %s: %w", path, err)
	}
	return ed25519.NewKeyFromSeed(seed), nil
}

func decodeHexKey(raw []byte, size int) ([]byte, error) {
	s := strings.TrimSpace(string(raw))
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != size {
		return nil, fmt.Errorf("%w: want %d hex digits", ErrBadKeyFile, 2*size)
	}
	return b, nil
}

// loadOrCreateIdentity returns the node's Ed25519 identity from path, creating it on first use.
func loadOrCreateIdentity(path string, random io.Reader) (ed25519.PrivateKey, error) {
	raw, err := os.ReadFile(path)
	if err == nil {
		seed, err := decodeHexKey(raw, ed25519.SeedSize)
		if err != nil {
			return nil, fmt.Errorf("dt: %s: %w", path, err)
		}
		return ed25519.NewKeyFromSeed(seed), nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("dt: read node identity: %w", err)
	}
	_, priv, err := ed25519.GenerateKey(random)
	if err != nil {
		return nil, fmt.Errorf("dt: generate node identity: %w", err)
	}
	if err := writeNewFile(path, []byte(hex.EncodeToString(priv.Seed())+"\n"), 0o600); err != nil {
		return nil, err
	}
	return priv, nil
}
