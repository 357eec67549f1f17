//go:build ignore

// gen_land converts the land outline of a world-atlas TopoJSON file (Natural Earth 1:110m land,
// public domain) into static/land.svg: one SVG path in an equirectangular projection, x = (lon +
// 180) × 10 and y = (90 − lat) × 10, so the map's viewBox is 0 0 3600 1800 and a point is placed
// to a tenth of a degree. It runs once, by hand (see the go:generate line in map.go); the
// dashboard embeds its output and fetches nothing at run time.
//
// TopoJSON is described at https://github.com/topojson/topojson-specification: arcs are shared
// line strings, quantized and delta-encoded; a polygon is a list of rings, a ring a list of arc
// indices where ^i (a negative index) means arc i reversed.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
)

type topology struct {
	Type      string `json:"type"`
	Transform *struct {
		Scale     [2]float64 `json:"scale"`
		Translate [2]float64 `json:"translate"`
	} `json:"transform"`
	Arcs    [][][2]float64       `json:"arcs"`
	Objects map[string]*geometry `json:"objects"`
}

type geometry struct {
	Type       string          `json:"type"`
	Arcs       json.RawMessage `json:"arcs"`
	Geometries []*geometry     `json:"geometries"`
}

func main() {
	in := flag.String("in", "land-110m.json", "world-atlas TopoJSON `FILE`")
	out := flag.String("out", "static/land.svg", "SVG `FILE` to write")
	object := flag.String("object", "land", "the topology's `OBJECT` to draw")
	flag.Parse()
	if err := run(*in, *out, *object); err != nil {
		fmt.Fprintln(os.Stderr, "gen_land:", err)
		os.Exit(1)
	}
}

func run(in, out, object string) error {
	raw, err := os.ReadFile(in)
	if err != nil {
		return err
	}
	var topo topology
	if err := json.Unmarshal(raw, &topo); err != nil {
		return fmt.Errorf("%s: %w", in, err)
	}
	if topo.Type != "Topology" || topo.Objects[object] == nil {
		return fmt.Errorf("%s: not a topology with object %q", in, object)
	}
	arcs := decodeArcs(&topo)
	var rings [][]int
	if err := collectRings(topo.Objects[object], &rings); err != nil {
		return err
	}
	var d strings.Builder
	points := 0
	for _, ring := range rings {
		pts, err := ringPoints(arcs, ring)
		if err != nil {
			return err
		}
		for _, copy := range wrapRing(pts) {
			points += writeRing(&d, copy)
		}
	}
	svg := `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 3600 1800">` +
		"<!-- Natural Earth 1:110m land (public domain), via world-atlas 2.0.2; made by gen_land.go -->" +
		`<path id="land" fill-rule="evenodd" d="` + d.String() + `"/></svg>` + "\n"
	if err := os.WriteFile(out, []byte(svg), 0o644); err != nil {
		return err
	}
	fmt.Printf("%s: %d rings, %d points, %d bytes\n", out, len(rings), points, len(svg))
	return nil
}

// decodeArcs returns every arc as absolute longitude/latitude pairs.
func decodeArcs(topo *topology) [][][2]float64 {
	out := make([][][2]float64, len(topo.Arcs))
	for i, arc := range topo.Arcs {
		var x, y float64
		pts := make([][2]float64, len(arc))
		for j, p := range arc {
			if topo.Transform == nil {
				pts[j] = p
				continue
			}
			x, y = x+p[0], y+p[1] // delta-encoded when quantized
			pts[j] = [2]float64{
				x*topo.Transform.Scale[0] + topo.Transform.Translate[0],
				y*topo.Transform.Scale[1] + topo.Transform.Translate[1],
			}
		}
		out[i] = pts
	}
	return out
}

// collectRings appends the rings (lists of arc indices) of polygons and multipolygons.
func collectRings(g *geometry, rings *[][]int) error {
	switch g.Type {
	case "GeometryCollection":
		for _, c := range g.Geometries {
			if err := collectRings(c, rings); err != nil {
				return err
			}
		}
	case "Polygon":
		var p [][]int
		if err := json.Unmarshal(g.Arcs, &p); err != nil {
			return err
		}
		*rings = append(*rings, p...)
	case "MultiPolygon":
		var mp [][][]int
		if err := json.Unmarshal(g.Arcs, &mp); err != nil {
			return err
		}
		for _, p := range mp {
			*rings = append(*rings, p...)
		}
	default:
		return fmt.Errorf("unexpected geometry %q", g.Type)
	}
	return nil
}

// ringPoints joins a ring's arcs; each arc after the first starts where the previous ended, so
// its first point is dropped.
func ringPoints(arcs [][][2]float64, ring []int) ([][2]float64, error) {
	var pts [][2]float64
	for k, i := range ring {
		reversed := i < 0
		if reversed {
			i = ^i
		}
		if i >= len(arcs) {
			return nil, fmt.Errorf("arc %d of %d", i, len(arcs))
		}
		arc := arcs[i]
		seq := make([][2]float64, len(arc))
		for j := range arc {
			if reversed {
				seq[j] = arc[len(arc)-1-j]
			} else {
				seq[j] = arc[j]
			}
		}
		if k > 0 {
			seq = seq[1:]
		}
		pts = append(pts, seq...)
	}
	return pts, nil
}

// wrapRing returns a ring as drawable pieces of the flat map. The land outline is merged on the
// sphere, so a few rings cross the antimeridian (Russia, Fiji, Wrangel Island) and one goes round
// the pole (Antarctica). Drawn as they are, a crossing would paint a band across the whole map.
// Instead the ring's longitudes are unwrapped to be continuous, a ring round the pole is closed
// along the pole's edge of the map, and the ring is drawn once more shifted by 360° when it spills
// over one side: the viewBox clips each copy to its visible part.
func wrapRing(pts [][2]float64) [][][2]float64 {
	un := make([][2]float64, len(pts))
	un[0] = pts[0]
	for j := 1; j < len(pts); j++ {
		lon := pts[j][0]
		for lon-un[j-1][0] > 180 {
			lon -= 360
		}
		for lon-un[j-1][0] < -180 {
			lon += 360
		}
		un[j] = [2]float64{lon, pts[j][1]}
	}
	first, last := un[0], un[len(un)-1]
	if math.Abs(last[0]-first[0]) > 180 {
		// Round the pole: its last point is the first one a full turn away.
		pole := 90.0
		if first[1] < 0 {
			pole = -90
		}
		un = append(un, [2]float64{last[0], pole}, [2]float64{first[0], pole})
	}
	lo, hi := un[0][0], un[0][0]
	for _, p := range un {
		lo, hi = min(lo, p[0]), max(hi, p[0])
	}
	var out [][][2]float64
	for _, shift := range []float64{-360, 0, 360} {
		if hi+shift <= -180 || lo+shift >= 180 {
			continue
		}
		c := make([][2]float64, len(un))
		for j, p := range un {
			c[j] = [2]float64{p[0] + shift, p[1]}
		}
		out = append(out, c)
	}
	return out
}

// writeRing writes one closed subpath: an absolute move, then relative lines between points
// rounded to the grid, skipping points that round onto the previous one.
func writeRing(d *strings.Builder, pts [][2]float64) int {
	if len(pts) < 3 {
		return 0
	}
	proj := func(p [2]float64) (int, int) {
		return int(math.Round((p[0] + 180) * 10)), int(math.Round((90 - p[1]) * 10))
	}
	x, y := proj(pts[0])
	fmt.Fprintf(d, "M%d %d", x, y)
	n := 1
	cmd := "l"
	for _, p := range pts[1:] {
		nx, ny := proj(p)
		dx, dy := nx-x, ny-y
		if dx == 0 && dy == 0 {
			continue
		}
		d.WriteString(cmd)
		cmd = ""
		writeNumber(d, dx, true)
		writeNumber(d, dy, false)
		x, y = nx, ny
		n++
	}
	d.WriteString("z")
	return n
}

// writeNumber writes n with the separator SVG path syntax needs: none before a minus sign or
// after a command letter, a space otherwise.
func writeNumber(d *strings.Builder, n int, first bool) {
	s := strconv.Itoa(n)
	last := d.String()[d.Len()-1]
	if n >= 0 && !(first && last == 'l') {
		d.WriteByte(' ')
	}
	d.WriteString(s)
}
