// Package guardapi is the address guard's API on a node's admin listener: GET /guard lists the
// blocks in force, POST /guard/unblock lifts them. `dt guard` is its client; it also works on a
// stopped node's data directory through the same Store and Lift.
//
// The POST takes a JSON body, {"target": "ADDR|PREFIX|all"}, and is refused unless its
// Content-Type is application/json and it carries no Origin header: a page in a browser on the
// node's machine can then neither send it cross-origin (the content type needs a CORS preflight,
// which the admin listener never grants) nor through a DNS name rebound to loopback (browsers
// send Origin with every POST; dt guard does not).
package guardapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"net/netip"
	"strings"

	"github.com/dt-cdn/dt/dt"
)

// The routes' paths.
const (
	Path        = "/guard"
	UnblockPath = "/guard/unblock"
)

// maxUnblockBody bounds the body of POST /guard/unblock; a target is a few dozen bytes.
const maxUnblockBody = 4 << 10

// List is the body of GET /guard and of `dt guard list --json`.
type List struct {
	Blocks []dt.Block `json:"blocks"`
}

// UnblockRequest is the body of POST /guard/unblock.
type UnblockRequest struct {
	// Target is an IP address, a prefix (CIDR) or "all".
	Target string `json:"target"`
}

// UnblockResult is the answer of POST /guard/unblock and `dt guard unblock --json`.
type UnblockResult struct {
	Lifted []dt.Block `json:"lifted"`
	// Error says why nothing was lifted; empty on success.
	Error string `json:"error,omitempty"`
}

// Store is what the guard's API works on: a running node (*dt.Node) or a stopped node's data
// directory (*dt.StoredBlocks).
type Store interface {
	Blocks() []dt.Block
	Unblock(netip.Prefix) ([]dt.Block, error)
	UnblockAll() ([]dt.Block, error)
}

// Target is a parsed ADDR|PREFIX|all: All, or a valid, masked Prefix without a zone.
type Target struct {
	All    bool
	Prefix netip.Prefix
}

// ParseTarget accepts "all", an IP address (IPv6 in brackets or not, with a zone or a port as a
// log line shows it) or a prefix in CIDR notation.
func ParseTarget(s string) (Target, error) {
	s = strings.TrimSpace(s)
	if s == "all" {
		return Target{All: true}, nil
	}
	if p, err := netip.ParsePrefix(s); err == nil {
		return Target{Prefix: p.Masked()}, nil
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		s = ap.Addr().String()
	}
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		s = s[1 : len(s)-1]
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return Target{}, fmt.Errorf("%q is not an IP address, a prefix such as 192.0.2.0/24, or all", s)
	}
	a = a.WithZone("")
	return Target{Prefix: netip.PrefixFrom(a, a.BitLen())}, nil
}

// String is the target as ParseTarget reads it back: all, an address, or a prefix.
func (t Target) String() string {
	if t.All {
		return "all"
	}
	if t.Prefix.IsSingleIP() {
		return t.Prefix.Addr().String()
	}
	return t.Prefix.String()
}

// Lift lifts target's blocks in s and returns them. Nothing to lift is not a failure for all;
// for an address or a prefix it is, and the error says so.
func Lift(s Store, target Target) ([]dt.Block, error) {
	if target.All {
		lifted, err := s.UnblockAll()
		if errors.Is(err, dt.ErrNotBlocked) {
			return []dt.Block{}, nil
		}
		return lifted, err
	}
	lifted, err := s.Unblock(target.Prefix)
	if errors.Is(err, dt.ErrNotBlocked) {
		return nil, fmt.Errorf("%s is not blocked (dt guard list shows the blocks)", target)
	}
	return lifted, err
}

// OrEmpty returns bs, or an empty list for nil, so that JSON shows [] rather than null.
func OrEmpty(bs []dt.Block) []dt.Block {
	if bs == nil {
		return []dt.Block{}
	}
	return bs
}

// Routes adds the guard's routes to a node's admin listener. describe words a failure to lift
// for the answer's Error field (nil: err.Error()); log receives each lift.
func Routes(mux *http.ServeMux, s Store, log *slog.Logger, describe func(error) string) {
	if describe == nil {
		describe = func(err error) string { return err.Error() }
	}
	mux.HandleFunc("GET "+Path, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, List{Blocks: s.Blocks()})
	})
	mux.HandleFunc("POST "+UnblockPath, func(w http.ResponseWriter, r *http.Request) {
		target, status, err := readUnblock(w, r)
		if err != nil {
			writeJSON(w, status, UnblockResult{Error: err.Error()})
			return
		}
		lifted, err := Lift(s, target)
		if err != nil {
			status := http.StatusInternalServerError
			if lifted == nil {
				status = http.StatusNotFound
			}
			writeJSON(w, status, UnblockResult{Lifted: OrEmpty(lifted), Error: describe(err)})
			return
		}
		log.Info("Blocks lifted through the admin listener", slog.String("target", target.String()),
			slog.Int("lifted", len(lifted)), slog.String("from", r.RemoteAddr))
		writeJSON(w, http.StatusOK, UnblockResult{Lifted: lifted})
	})
}

// readUnblock checks a POST /guard/unblock and reads its target, or returns the status to answer
// with and why.
func readUnblock(w http.ResponseWriter, r *http.Request) (Target, int, error) {
	if r.Header.Get("Origin") != "" {
		return Target{}, http.StatusForbidden, errors.New("requests from browsers are refused")
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return Target{}, http.StatusUnsupportedMediaType, errors.New("the body must be application/json")
	}
	var req UnblockRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxUnblockBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return Target{}, http.StatusBadRequest, fmt.Errorf("body: %v", err)
	}
	target, err := ParseTarget(req.Target)
	if err != nil {
		return Target{}, http.StatusBadRequest, err
	}
	return target, 0, nil
}

// writeJSON answers with v as indented JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v) // a write error means the client left
}
