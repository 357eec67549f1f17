package server

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
)

// DefaultMaxUDPSize is the largest UDP answer sent: the size DNS Flag Day 2020 settled on, which
// avoids IP fragmentation on practically every path. Larger answers are truncated (TC) and the
// resolver retries over TCP.
const DefaultMaxUDPSize = 1232

// Config configures a Handler.
type Config struct {
	// Store holds the zones to serve. Required.
	Store *Store
	// Dynamic, when set, answers A and AAAA for its name (GeoDNS). It must lie in a zone of the
	// Store; the zone's own A and AAAA records for the name answer only when it has none.
	Dynamic Dynamic
	// Synth, when set, answers the names of its zone (the CDN zone) that no published zone of
	// the same apex holds. Nil: none.
	Synth Synthesizer
	// Challenges, when set, returns the live TXT values of the ACME DNS-01 challenge of a domain
	// (canonical, without the trailing dot), which answer TXT queries for
	// "_acme-challenge.<domain>" in every zone served here and in Synth's. Nil: none.
	Challenges func(domain string) []string
	// MaxUDPSize bounds answers over UDP, whatever the client's EDNS buffer size. Zero:
	// DefaultMaxUDPSize.
	MaxUDPSize int
	// Registerer receives the handler's metrics. Nil: none.
	Registerer prometheus.Registerer
	// Logger receives write failures at debug level. Nil discards.
	Logger *slog.Logger
}

// Handler answers DNS queries from a Store: authoritative answers for the zones it holds, REFUSED
// for every other name (it is not a resolver), NOTIMP for opcodes other than QUERY, REFUSED for
// zone transfers (zones travel through dt, not AXFR). It speaks EDNS0 (RFC 6891) and EDNS Client
// Subnet (RFC 7871) and truncates UDP answers to the client's buffer size. It is safe for
// concurrent use.
type Handler struct {
	cfg     Config
	log     *slog.Logger
	metrics *metrics
}

var _ dns.Handler = (*Handler)(nil)

// NewHandler checks cfg and returns a Handler.
func NewHandler(cfg Config) (*Handler, error) {
	var errs []error
	if cfg.Store == nil {
		errs = append(errs, errors.New("server: Config.Store is required"))
	}
	if cfg.MaxUDPSize == 0 {
		cfg.MaxUDPSize = DefaultMaxUDPSize
	}
	if cfg.MaxUDPSize < dns.MinMsgSize || cfg.MaxUDPSize > dns.MaxMsgSize {
		errs = append(errs, fmt.Errorf("server: MaxUDPSize %d outside %d..%d", cfg.MaxUDPSize, dns.MinMsgSize, dns.MaxMsgSize))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	h := &Handler{cfg: cfg, log: cfg.Logger}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if cfg.Registerer != nil {
		m, err := newMetrics(cfg.Registerer, cfg.Store)
		if err != nil {
			return nil, err
		}
		h.metrics = m
	}
	return h, nil
}

// ServeDNS answers one query.
func (h *Handler) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	_, tcp := w.RemoteAddr().(*net.TCPAddr)
	m := h.Respond(r, clientAddr(w.RemoteAddr()), tcp)
	if m == nil {
		return
	}
	h.metrics.count(m, tcp)
	if err := w.WriteMsg(m); err != nil {
		h.log.Debug("DNS answer not sent", slog.Any("remote", w.RemoteAddr()), slog.Any("err", err))
	}
}

// Respond builds the answer to r from a client at remote (the resolver's address; invalid when
// unknown), for UDP or TCP. It returns nil for a message that deserves no answer (a response).
func (h *Handler) Respond(r *dns.Msg, remote netip.Addr, tcp bool) *dns.Msg {
	if r.Response {
		return nil
	}
	m := new(dns.Msg)
	m.SetReply(r)
	m.RecursionAvailable = false
	if r.Opcode != dns.OpcodeQuery {
		return m.SetRcode(r, dns.RcodeNotImplemented)
	}
	if len(r.Question) != 1 {
		return m.SetRcode(r, dns.RcodeFormatError)
	}
	opt := r.IsEdns0()
	if opt != nil && opt.Version() != 0 {
		m.SetEdns0(uint16(h.cfg.MaxUDPSize), false)
		m.Rcode = dns.RcodeBadVers // RFC 6891 §6.1.3
		return m
	}
	ecs, client, err := clientSubnet(opt, remote)
	if err != nil {
		m = m.SetRcode(r, dns.RcodeFormatError) // RFC 7871 §7.1: a malformed option
		m.SetEdns0(uint16(h.cfg.MaxUDPSize), false)
		return m
	}
	q := r.Question[0]
	var res result
	switch {
	case q.Qclass != dns.ClassINET && q.Qclass != dns.ClassANY:
		res = result{rcode: dns.RcodeRefused}
	case q.Qtype == dns.TypeAXFR || q.Qtype == dns.TypeIXFR:
		res = result{rcode: dns.RcodeRefused}
	default:
		res = h.answer(q, client, tcp)
	}
	m.Rcode, m.Authoritative = res.rcode, res.authoritative
	m.Answer, m.Ns, m.Extra = preserveCase(res.answer, q.Name), res.authority, res.extra
	if res.dynamic {
		h.metrics.dynamicAnswer()
	}
	size := dns.MaxMsgSize
	if opt != nil {
		m.SetEdns0(uint16(h.cfg.MaxUDPSize), false)
		if ecs != nil {
			echo := *ecs
			echo.SourceScope = 0
			if res.dynamic {
				echo.SourceScope = uint8(res.scope)
			}
			m.IsEdns0().Option = append(m.IsEdns0().Option, &echo)
		}
		if !tcp {
			size = min(max(int(opt.UDPSize()), dns.MinMsgSize), h.cfg.MaxUDPSize)
		}
	} else if !tcp {
		size = dns.MinMsgSize
	}
	m.Truncate(size)
	return m
}

// clientAddr is the address of the resolver that asked.
func clientAddr(a net.Addr) netip.Addr {
	switch v := a.(type) {
	case *net.UDPAddr:
		ip, _ := netip.AddrFromSlice(v.IP)
		return ip.Unmap()
	case *net.TCPAddr:
		ip, _ := netip.AddrFromSlice(v.IP)
		return ip.Unmap()
	}
	return netip.Addr{}
}

// clientSubnet finds who the answer is for: the EDNS Client Subnet option's prefix when the query
// has one (RFC 7871), else the resolver's own address. A source prefix length of 0 means the
// client asked not to be located (§7.1.2): the prefix is then invalid. It returns the option to
// echo (nil without one) and an error for an option that breaks §6.
func clientSubnet(opt *dns.OPT, remote netip.Addr) (*dns.EDNS0_SUBNET, netip.Prefix, error) {
	var own netip.Prefix
	if remote.IsValid() {
		own = netip.PrefixFrom(remote, remote.BitLen())
	}
	if opt == nil {
		return nil, own, nil
	}
	for _, o := range opt.Option {
		e, ok := o.(*dns.EDNS0_SUBNET)
		if !ok {
			continue
		}
		var bits int
		switch e.Family {
		case 1:
			bits = 32
		case 2:
			bits = 128
		default:
			return nil, own, fmt.Errorf("server: ECS family %d", e.Family)
		}
		if int(e.SourceNetmask) > bits || e.SourceScope != 0 {
			return nil, own, fmt.Errorf("server: ECS source /%d scope /%d", e.SourceNetmask, e.SourceScope)
		}
		if e.SourceNetmask == 0 {
			return e, netip.Prefix{}, nil
		}
		ip, ok := netip.AddrFromSlice(e.Address)
		if !ok {
			return nil, own, errors.New("server: ECS address")
		}
		ip = ip.Unmap()
		if ip.BitLen() != bits {
			return nil, own, errors.New("server: ECS address of the wrong family")
		}
		p, err := ip.Prefix(int(e.SourceNetmask))
		if err != nil {
			return nil, own, err
		}
		return e, p, nil
	}
	return nil, own, nil
}
