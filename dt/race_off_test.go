//go:build !race

package dt

// slowdown scales the time bounds of the attack tests (see race_on_test.go).
const slowdown = 1
