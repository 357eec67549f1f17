// Package testdns runs DNS servers on loopback for tests: stand-ins for the recursive resolver a
// node asks, whose answers the test chooses.
package testdns

import (
	"net"
	"testing"

	"github.com/miekg/dns"
)

// MXResolver starts a resolver on 127.0.0.1 (UDP) that answers MX for example.com with mailHost
// and NXDOMAIN for every other question, as a recursive resolver would. It returns its address
// and stops at the end of the test.
func MXResolver(t testing.TB, mailHost string) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		m.RecursionAvailable = true
		if q := r.Question[0]; q.Name == "example.com." && q.Qtype == dns.TypeMX {
			m.Answer = append(m.Answer, &dns.MX{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeMX, Class: dns.ClassINET, Ttl: 300}, Preference: 10, Mx: mailHost})
		} else {
			m.Rcode = dns.RcodeNameError
		}
		_ = w.WriteMsg(m)
	})}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.ActivateAndServe() }()
	<-started
	t.Cleanup(func() { _ = srv.Shutdown(); <-done })
	return pc.LocalAddr().String()
}

// ServeTCP serves h over TCP on 127.0.0.1 (Pebble's VA and dt's issuer ask over TCP) until the
// test ends, and returns its address.
func ServeTCP(t testing.TB, h dns.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	srv := &dns.Server{Listener: ln, Net: "tcp", Handler: h, NotifyStartedFunc: func() { close(started) }}
	done := make(chan error, 1)
	go func() { done <- srv.ActivateAndServe() }()
	select {
	case <-started:
	case err := <-done:
		t.Fatalf("dns server: %v", err)
	}
	t.Cleanup(func() {
		if err := srv.Shutdown(); err != nil {
			t.Errorf("dns server shutdown: %v", err)
		}
		<-done
	})
	return ln.Addr().String()
}
