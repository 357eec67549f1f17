package edge

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"

	"github.com/dt-cdn/dt/geoip"
	"github.com/dt-cdn/dt/heartbeat"
	"github.com/dt-cdn/dt/internal/httpserve"
)

// listeners are the visitor listeners of an edge; a nil one is not configured.
type listeners struct {
	http, https net.Listener
}

// listen opens the listeners whose address is set.
func listen(httpAddr, httpsAddr string) (listeners, error) {
	var lns listeners
	open := func(addr string) (net.Listener, error) {
		if addr == "" {
			return nil, nil
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("listen on %s: %w", addr, err)
		}
		return ln, nil
	}
	var err error
	if lns.https, err = open(httpsAddr); err != nil {
		return lns, err
	}
	if lns.http, err = open(httpAddr); err != nil {
		lns.close()
		return listeners{}, err
	}
	return lns, nil
}

// addr is ln's bound address, or "" for none.
func (l *listeners) addr(ln net.Listener) string {
	if ln == nil {
		return ""
	}
	return ln.Addr().String()
}

// close closes the listeners; closing one a server already closed is harmless.
func (l *listeners) close() {
	for _, ln := range []net.Listener{l.http, l.https} {
		if ln != nil {
			ln.Close()
		}
	}
}

// serveHTTP serves h on ln until ctx ends: the ACME challenges and redirects to HTTPS of an edge
// with domains, by net/http's server with the edge's bounds (httpserve's defaults): without
// IdleTimeout an idle connection would keep its place under the caps for ever.
func serveHTTP(ctx context.Context, ln net.Listener, h http.Handler, log *slog.Logger) error {
	srv, err := httpserve.New(httpserve.Config{Handler: h, StdHTTP1: true, Logger: log})
	if err != nil {
		return err
	}
	return srv.Serve(ctx, ln, nil)
}

// publicURL is the URL visitors reach the edge at (see Config.PublicURL): the configured
// one, else by its domain or listeners.
func publicURL(configured string, domains []string, httpAddr, httpsAddr string) string {
	if configured != "" {
		return strings.TrimSuffix(configured, "/")
	}
	if len(domains) > 0 {
		_, port, _ := net.SplitHostPort(httpsAddr)
		if port == "443" || port == "" {
			return "https://" + domains[0]
		}
		return "https://" + net.JoinHostPort(domains[0], port)
	}
	if httpsAddr != "" {
		return "https://" + listenHost(httpsAddr)
	}
	return "http://" + listenHost(httpAddr)
}

// listenHost turns a listen address into one a visitor can use (an empty host means localhost).
func listenHost(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}

func hostOf(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return ""
	}
	return p.Hostname()
}

// geoLocator returns a serviceConfig.Locate that looks an address up in db.
func geoLocator(db *geoip.DB, log *slog.Logger) func(netip.Addr) *heartbeat.Location {
	return func(ip netip.Addr) *heartbeat.Location {
		if rec, err := db.Lookup(ip); err == nil && rec != nil && rec.HasLocation {
			return &heartbeat.Location{Lat: rec.Lat, Lon: rec.Lon, Country: rec.Country, Continent: rec.Continent}
		}
		log.Warn("Public address not found in the GeoIP database; location unknown (set the location)", slog.String("addr", ip.String()))
		return nil
	}
}

// geoCountry returns a trafficstats.Config.Country that looks an address up in db.
func geoCountry(db *geoip.DB) func(netip.Addr) string {
	return func(ip netip.Addr) string {
		if rec, err := db.Lookup(ip); err == nil && rec != nil {
			return rec.Country
		}
		return ""
	}
}
