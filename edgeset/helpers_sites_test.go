package edgeset_test

import (
	"fmt"

	"github.com/dt-cdn/dt/edgeset"
	"github.com/dt-cdn/dt/heartbeat"
	"github.com/dt-cdn/dt/internal/testkit/fleet"
)

// HundredSites is a view of 100 sites and 20 live edges across the fleet's cities; edge i lags
// for site i (so each of the first 20 sites has one edge fewer), and every fifth edge lists
// three more lagging sites. Every edge knows the sites' current deploys.
func HundredSites() (*edgeset.View, []edgeset.Site) {
	var list []edgeset.Site
	for i := range 100 {
		list = append(list, edgeset.Site{Name: fmt.Sprintf("site%03d", i), Hosts: []string{fmt.Sprintf("s%d.example.com", i)},
			Current: fmt.Sprintf("deploy-%d", i)})
	}
	places := []*heartbeat.Location{fleet.Amsterdam, fleet.Frankfurt, fleet.NewYork, fleet.Tokyo, fleet.SaoPaulo, fleet.London, fleet.Sydney}
	v := &edgeset.View{Sites: edgeset.NewSites(list), Reports: map[string]edgeset.SiteReport{}}
	for i := range 20 {
		node := fmt.Sprintf("edge%02d", i)
		v.Edges = append(v.Edges, fleet.Live(node, places[i%len(places)]))
		r := edgeset.SiteReport{Reports: true, Sites: 100, Lagging: []edgeset.LaggingSite{{Site: list[i].Name}},
			Digest: fmt.Sprintf("%016x", i), CurrentDigest: v.Sites.CurrentsDigest()}
		if i%5 == 0 {
			r.Lagging = append(r.Lagging, edgeset.LaggingSite{Site: list[50+i].Name}, edgeset.LaggingSite{Site: list[60+i].Name}, edgeset.LaggingSite{Site: list[70+i].Name})
		}
		v.Reports[node] = r
	}
	return v, v.Sites.List()
}
