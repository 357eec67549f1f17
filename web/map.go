package web

import "github.com/dt-cdn/dt/heartbeat"

// The land outline in static/land.svg is Natural Earth's 1:110m land (public domain; packaged as
// TopoJSON by the npm package world-atlas 2.0.2, ISC licence). To make it again, take
// land-110m.json from that package (npm pack world-atlas@2.0.2) and run:
//
//go:generate go run gen_land.go -in land-110m.json -out static/land.svg

// The map is equirectangular, in tenths of a degree: x = (lon + 180) × 10 from the left edge,
// y = (90 − lat) × 10 from the top, the projection gen_land.go draws the land with.
const (
	mapWidth  = 3600
	mapHeight = 1800
)

// MapPoint is a place on the map, in the units of the land outline's viewBox.
type MapPoint struct {
	X float64 `json:"x"`
	Y float64 `json:"y"`
}

// project places a location on the map; nil places nothing.
func project(l *heartbeat.Location) *MapPoint {
	if l == nil {
		return nil
	}
	return &MapPoint{X: (l.Lon + 180) * mapWidth / 360, Y: (90 - l.Lat) * mapHeight / 180}
}
