package certs

import "errors"

// ErrDomain is returned by New when a configured domain is not a host name an ACME server can
// issue a certificate for through http-01 or tls-alpn-01 (IP addresses, wildcards, single
// labels, invalid characters).
var ErrDomain = errors.New("certs: invalid domain")

// ErrCacheDir is returned by New when Domains are set without a cache directory, or when the
// cache directory cannot be used.
var ErrCacheDir = errors.New("certs: unusable cache directory")

// ErrDirectory is returned by New when the ACME directory is not an absolute https URL
// (RFC 8555 §6.1 requires HTTPS).
var ErrDirectory = errors.New("certs: invalid ACME directory URL")

// ErrEmail is returned by New when the contact email is not a plain address.
var ErrEmail = errors.New("certs: invalid contact email")

// ErrUnknownHost is returned by Manager.Expiry for a name outside the configured Domains.
var ErrUnknownHost = errors.New("certs: host not configured")

// ErrCorrupt is returned when a stored certificate cannot be decoded.
var ErrCorrupt = errors.New("certs: corrupt certificate data")
