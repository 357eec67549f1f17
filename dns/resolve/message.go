// Package resolve checks DNS answers from many places: a node asks every node online, through dt
// messages, to resolve a name with its own resolver, and compares what they saw. A resolver on
// one network that is spoofed or poisoned (a forged DKIM key, a diverted MX) then stands out
// against the others: the original node-distributed-table's defence against modified DNS answers.
//
// Requests and answers are dt messages, so each is signed by the node that sent it and the
// table's flooding carries it to every node online. A request names the node that asks and an
// answer the node that answers; both must be the message's signer, so no node can ask or answer
// in another's name. A Responder answers at most a few requests per second per asking node and
// overall, drops requests too old to matter, and runs a bounded number of lookups at a time: one
// node cannot turn the network into a flood of DNS queries. On the asking side, a Collector keeps
// the answers that are the request's, and Gather waits for them, repeating the request for the
// nodes that link up late; Compare then says who saw what.
//
// # Caveats
//
// Answers are compared without their TTLs (caches count them down) and as sorted record sets, so
// a round-robin order does not count as a difference. Names whose answers legitimately depend on
// where they are asked from (GeoDNS, CDNs) differ between places; the report shows how, and the
// check is meant for names that should not (MX, DKIM and SPF TXT records, A records of mail hosts).
package resolve

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/dt-cdn/dt/dns/zone"
	"github.com/dt-cdn/dt/dt"
)

// Message types, the "type" field of the dt messages this package sends. ONLY APPEND; the values
// are part of the protocol.
const (
	RequestType = "dns-resolve"
	AnswerType  = "dns-resolve-answer"
)

// Version is the message format written by this code; readers refuse others.
const Version = 1

// Limits on what a message may carry, checked on everything received.
const (
	maxRecords     = 256  // records in one answer
	maxRecordBytes = 2048 // one record in presentation form
	maxErrorBytes  = 512
)

// Errors of the package.
var (
	// ErrNotResolve is returned by the decoders for a message of another type (other kinds of
	// message share the network).
	ErrNotResolve = errors.New("resolve: not a resolve message")
	// ErrInvalid is returned for a resolve message that does not decode or breaks a limit.
	ErrInvalid = errors.New("resolve: invalid message")
)

// Request asks every node to resolve Name with its own resolver.
type Request struct {
	Type string `json:"type"` // RequestType
	V    int    `json:"v"`
	// ID is 32 random hex digits; answers name it.
	ID string `json:"id"`
	// From is the asking node's id; it must be the message's signer.
	From  string `json:"from"`
	Name  string `json:"name"`  // canonical
	QType string `json:"qtype"` // "MX", "TXT", …
	// Time is when it was asked (Unix milliseconds); responders ignore requests too old to be
	// waited for.
	Time int64 `json:"time"`
}

// Answer is what one node's resolver said.
type Answer struct {
	Type string `json:"type"` // AnswerType
	V    int    `json:"v"`
	ID   string `json:"id"` // the request's
	To   string `json:"to"` // the asking node's id
	// Node is the answering node's id; it must be the message's signer.
	Node  string `json:"node"`
	Name  string `json:"name"`
	QType string `json:"qtype"`
	// Rcode is the response code ("NOERROR", "NXDOMAIN", …); empty when Error is set.
	Rcode string `json:"rcode,omitempty"`
	// Records are the answer section, canonical (see Canonical): no TTLs, sorted.
	Records []string `json:"records"`
	// Error says why the node got no answer (its resolver timed out, refused, …).
	Error string `json:"error,omitempty"`
	// Millis is how long the lookup took.
	Millis int64 `json:"ms"`
}

// NewRequest makes a request from the node from to resolve name (any case, trailing dot
// optional) of type qtype ("MX").
func NewRequest(from dt.NodeID, name, qtype string, random io.Reader, now time.Time) (Request, error) {
	var id [16]byte
	if _, err := io.ReadFull(random, id[:]); err != nil {
		return Request{}, fmt.Errorf("resolve: request id: %w", err)
	}
	r := Request{Type: RequestType, V: Version, ID: hex.EncodeToString(id[:]), From: from.String(),
		Name: zone.CanonicalName(name), QType: strings.ToUpper(qtype), Time: now.UnixMilli()}
	if err := r.validate(); err != nil {
		return Request{}, err
	}
	return r, nil
}

// QueryType returns the request's type as a number.
func (r *Request) QueryType() uint16 { t, _ := queryType(r.QType); return t }

func (r *Request) validate() error {
	if r.Type != RequestType || r.V != Version {
		return fmt.Errorf("%w: type %q version %d", ErrInvalid, r.Type, r.V)
	}
	if !isHexID(r.ID) || !isHexID(r.From) {
		return fmt.Errorf("%w: id %q from %q", ErrInvalid, r.ID, r.From)
	}
	if r.Name == "" || zone.CanonicalName(r.Name) != r.Name {
		return fmt.Errorf("%w: name %q is not a canonical domain name", ErrInvalid, r.Name)
	}
	if _, ok := queryType(r.QType); !ok {
		return fmt.Errorf("%w: type %q cannot be asked", ErrInvalid, r.QType)
	}
	return nil
}

// queryType parses a type that a request may ask: any data type, not the meta types (ANY, AXFR,
// OPT, …) whose answers are not comparable or not for resolvers.
func queryType(s string) (uint16, bool) {
	t, ok := dns.StringToType[s]
	if !ok || t == dns.TypeNone {
		return 0, false
	}
	switch t {
	case dns.TypeANY, dns.TypeAXFR, dns.TypeIXFR, dns.TypeOPT, dns.TypeTSIG, dns.TypeTKEY, dns.TypeMAILA, dns.TypeMAILB:
		return 0, false
	}
	return t, true
}

// ParseQueryType reads a type given on a command line ("mx", "TXT"); it refuses meta types.
func ParseQueryType(s string) (uint16, error) {
	t, ok := queryType(strings.ToUpper(s))
	if !ok {
		return 0, fmt.Errorf("resolve: %q is not a record type that can be compared", s)
	}
	return t, nil
}

func (a *Answer) validate() error {
	if a.Type != AnswerType || a.V != Version {
		return fmt.Errorf("%w: type %q version %d", ErrInvalid, a.Type, a.V)
	}
	if !isHexID(a.ID) || !isHexID(a.To) || !isHexID(a.Node) {
		return fmt.Errorf("%w: ids", ErrInvalid)
	}
	if a.Name == "" || zone.CanonicalName(a.Name) != a.Name {
		return fmt.Errorf("%w: name %q", ErrInvalid, a.Name)
	}
	if _, ok := queryType(a.QType); !ok {
		return fmt.Errorf("%w: type %q", ErrInvalid, a.QType)
	}
	if (a.Error == "") == (a.Rcode == "") {
		return fmt.Errorf("%w: an answer has a response code or an error, one of them", ErrInvalid)
	}
	if _, ok := dns.StringToRcode[a.Rcode]; a.Rcode != "" && !ok {
		return fmt.Errorf("%w: response code %q", ErrInvalid, a.Rcode)
	}
	if len(a.Error) > maxErrorBytes || len(a.Records) > maxRecords || a.Millis < 0 {
		return fmt.Errorf("%w: over a limit", ErrInvalid)
	}
	for _, r := range a.Records {
		if len(r) > maxRecordBytes || strings.ContainsAny(r, "\n\r") {
			return fmt.Errorf("%w: record of %d bytes", ErrInvalid, len(r))
		}
	}
	if !slices.IsSorted(a.Records) {
		return fmt.Errorf("%w: records not sorted", ErrInvalid)
	}
	return nil
}

// isHexID reports whether s is 32 lowercase hex digits (a node id or a request id).
func isHexID(s string) bool {
	if len(s) != 32 {
		return false
	}
	b, err := hex.DecodeString(s)
	return err == nil && hex.EncodeToString(b) == s
}

// DecodeRequest parses a dt message payload. It returns ErrNotResolve for other messages and
// ErrInvalid for requests that break the format.
func DecodeRequest(payload []byte) (Request, error) {
	var r Request
	if err := decode(payload, RequestType, &r); err != nil {
		return Request{}, err
	}
	if err := r.validate(); err != nil {
		return Request{}, err
	}
	return r, nil
}

// DecodeAnswer parses a dt message payload. It returns ErrNotResolve for other messages and
// ErrInvalid for answers that break the format.
func DecodeAnswer(payload []byte) (Answer, error) {
	var a Answer
	if err := decode(payload, AnswerType, &a); err != nil {
		return Answer{}, err
	}
	if err := a.validate(); err != nil {
		return Answer{}, err
	}
	return a, nil
}

// decode unmarshals payload into v when its "type" is want.
func decode(payload []byte, want string, v any) error {
	var probe struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(payload, &probe); err != nil || probe.Type != want {
		return ErrNotResolve
	}
	if err := json.Unmarshal(payload, v); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return nil
}

// Canonical returns records as compared across nodes: owner, type and data in presentation form,
// without TTL or class, sorted and without duplicates.
func Canonical(rrs []dns.RR) []string {
	out := make([]string, 0, len(rrs))
	for _, rr := range rrs {
		h := rr.Header()
		data := strings.TrimPrefix(rr.String(), h.String())
		if u, ok := rr.(*dns.RFC3597); ok {
			data = u.Rdata
		}
		t := dns.TypeToString[h.Rrtype]
		if t == "" {
			t = fmt.Sprintf("TYPE%d", h.Rrtype)
		}
		out = append(out, zone.CanonicalName(h.Name)+" "+t+" "+data)
	}
	slices.Sort(out)
	return slices.Compact(out)
}
