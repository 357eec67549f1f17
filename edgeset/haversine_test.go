package edgeset

import (
	"math"
	"testing"
)

func TestHaversine(t *testing.T) {
	// Reference figures: Amsterdam–New York about 5,860 km; antipodes half the circumference.
	if d := haversineKm(52.3676, 4.9041, 40.7128, -74.0060); math.Abs(d-5860) > 15 {
		t.Errorf("Amsterdam–New York %v km", d)
	}
	if d := haversineKm(0, 0, 0, 180); math.Abs(d-math.Pi*earthRadiusKm) > 1e-6 {
		t.Errorf("antipodes %v km", d)
	}
	if d := haversineKm(10, 20, 10, 20); d != 0 {
		t.Errorf("same point %v km", d)
	}
}
