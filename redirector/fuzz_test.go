package redirector

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"testing"
	"time"

	"github.com/dt-cdn/dt/heartbeat"
	"github.com/dt-cdn/dt/internal/testkit/fleet"
)

// FuzzExplainIP feeds the explain endpoint arbitrary ip parameters: it answers 200 exactly when
// the parameter is an address, 400 otherwise, always with JSON, and never fails or panics.
func FuzzExplainIP(f *testing.F) {
	for _, s := range []string{"145.100.1.1", "2001:610::1", "::ffff:145.100.1.1", "fe80::1%eth0", "", "garbage",
		"1.2.3.4/8", "[2001:db8::1]", "1.2.3.4:80", "999.1.1.1", "::", "0.0.0.0", "\x00", "%zz"} {
		f.Add(s)
	}
	h, err := NewHandler(HandlerConfig{
		Edges: func() ([]heartbeat.Edge, string) { return fleet.Edges(), fleet.Current },
		Geo:   fleet.GeoDB(f),
		Now:   func() time.Time { return fleet.Now },
	})
	if err != nil {
		f.Fatal(err)
	}
	explainer := h.Explain()
	f.Fuzz(func(t *testing.T, ip string) {
		req := httptest.NewRequest("GET", "/explain?ip="+url.QueryEscape(ip), nil)
		rec := httptest.NewRecorder()
		explainer.ServeHTTP(rec, req)
		var body struct {
			Error  string `json:"error"`
			Client struct {
				IP string `json:"ip"`
			} `json:"client"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
			t.Fatalf("%q: status %d, body not JSON: %v", ip, rec.Code, err)
		}
		want, perr := netip.ParseAddr(ip)
		switch {
		case perr == nil && len(ip) <= maxExplainIPLen:
			if rec.Code != http.StatusOK || body.Client.IP != want.Unmap().WithZone("").String() {
				t.Fatalf("%q: status %d, client %q", ip, rec.Code, body.Client.IP)
			}
		case rec.Code != http.StatusBadRequest || body.Error == "":
			t.Fatalf("%q: status %d, error %q", ip, rec.Code, body.Error)
		}
	})
}
