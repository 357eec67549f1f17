// Package netconf holds the network-wide settings a master writes into the dt table: today the
// CDN zone, the DNS zone whose names dt's own DNS nodes synthesise from heartbeats and site
// records ("<edge>.<zone>", "<site>.<zone>", "<site>--<edge>.<zone>", previews), and whose
// wildcard certificate lets every edge serve every one of them.
//
// The settings are one record under Key, written by "dt network set" and shown by "dt network
// show". Every node reads it; a node that has not received it, or that refuses it, acts as on a
// network with no settings (no CDN zone).
package netconf

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/dt-cdn/dt/internal/dnsname"
)

// Key is the table key of the settings record.
const Key = "network/settings"

// Version is the only value of Settings.V this release writes and accepts.
const Version = 1

// MaxRecordBytes bounds the record ParseSettings reads. Every node parses it from the network;
// the settings of this release take under 300 bytes, and 4 KiB leaves room for later fields.
const MaxRecordBytes = 4 << 10

// MaxZoneLen is the longest CDN zone: the longest name (253 characters) less room for one
// label of 63 characters and its dot, so that "<site>--<edge>.<zone>" names still fit.
const MaxZoneLen = 253 - 64

// ErrInvalidSettings is wrapped by every error of ParseSettings, Validate and Marshal.
var ErrInvalidSettings = errors.New("netconf: invalid network settings")

// Settings is the record under Key. Its JSON, as Marshal writes it:
//
//	{"v":1,"cdn_zone":"cdn.example.com"}
//
// Fields a later release adds are ignored by this one, so a master may be upgraded first: a
// record with a field this release does not know still gives it the fields it does.
type Settings struct {
	V int `json:"v"`
	// CDNZone is the zone delegated to dt's DNS nodes, lower case, without a trailing dot;
	// empty for none. It has at least two labels (a zone directly under a top-level domain
	// would claim every name of that domain's users).
	CDNZone string `json:"cdn_zone,omitempty"`
}

// Validate reports the first rule s breaks, as an error wrapping ErrInvalidSettings.
func (s Settings) Validate() error {
	if s.V != Version {
		return fmt.Errorf("%w: version %d, want %d", ErrInvalidSettings, s.V, Version)
	}
	if s.CDNZone != "" {
		if err := CheckZone(s.CDNZone); err != nil {
			return err
		}
	}
	return nil
}

// Marshal returns the canonical JSON of s, refusing settings Validate refuses so that a master
// never writes a record nodes would refuse.
func (s Settings) Marshal() ([]byte, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidSettings, err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// ParseSettings decodes and validates the record from untrusted bytes. Data after the object,
// a record over MaxRecordBytes and anything Validate refuses are refused; unknown fields are
// ignored (see Settings).
func ParseSettings(b []byte) (Settings, error) {
	if len(b) > MaxRecordBytes {
		return Settings{}, fmt.Errorf("%w: %d bytes, at most %d", ErrInvalidSettings, len(b), MaxRecordBytes)
	}
	var s Settings
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&s); err != nil {
		return Settings{}, fmt.Errorf("%w: %w", ErrInvalidSettings, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Settings{}, fmt.Errorf("%w: data after the JSON object", ErrInvalidSettings)
	}
	if err := s.Validate(); err != nil {
		return Settings{}, err
	}
	return s, nil
}

// NormalizeZone returns a zone as a user may type it ("CDN.Example.com.") in the form Settings
// holds: lower case, without the trailing dot. It does not validate; see CheckZone.
func NormalizeZone(z string) string {
	return strings.ToLower(strings.TrimSuffix(strings.TrimSpace(z), "."))
}

// CheckZone reports why z is not a CDN zone, as an error wrapping ErrInvalidSettings: it must
// be a normalised host name (NormalizeZone) of at least two labels, each of letters, digits and
// hyphens, 1 to 63 characters, neither starting nor ending with a hyphen, at most MaxZoneLen
// characters in all.
func CheckZone(z string) error {
	if z == "" || len(z) > MaxZoneLen {
		return fmt.Errorf("%w: CDN zone of %d characters, want 1 to %d", ErrInvalidSettings, len(z), MaxZoneLen)
	}
	labels := strings.Split(z, ".")
	if len(labels) < 2 {
		return fmt.Errorf("%w: CDN zone %q has one label; use a zone under your domain, such as cdn.%s.com", ErrInvalidSettings, z, z)
	}
	for _, l := range labels {
		if !dnsname.IsLabel(l) {
			return fmt.Errorf("%w: CDN zone %q: label %q is not 1 to 63 of a-z, 0-9 and '-' (not first or last)", ErrInvalidSettings, z, l)
		}
	}
	return nil
}
