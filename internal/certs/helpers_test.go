package certs

import (
	"log/slog"
	"testing"
)

// testLogger logs through t, so the Manager's events show with -v and on failure.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}
