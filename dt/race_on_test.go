//go:build race

package dt

// slowdown scales the time bounds of the attack tests: under the race detector a signature
// check takes milliseconds instead of tens of microseconds, and each hop of a flood verifies
// what its budgets let through before the messages queued behind it.
const slowdown = 3
