package nodehost

import (
	"context"
	"log/slog"
	"unicode/utf8"

	"github.com/dt-cdn/dt/dt"
)

// maxLoggedObject bounds how much of an object or message one log line shows.
const maxLoggedObject = 200

// logEvent logs one event with stable keys: type, key, from, origin, err, object.
func logEvent(log *slog.Logger, ev dt.Event) {
	level := slog.LevelInfo
	attrs := []slog.Attr{slog.String("type", ev.Type.String())}
	if ev.Key != "" {
		attrs = append(attrs, slog.String("key", ev.Key))
	}
	if ev.From != (dt.NodeID{}) {
		attrs = append(attrs, slog.Any("from", ev.From))
	}
	if ev.Origin != "" {
		attrs = append(attrs, slog.String("origin", ev.Origin))
	}
	if ev.Err != nil {
		level = slog.LevelWarn
		attrs = append(attrs, slog.Any("err", ev.Err))
	}
	if len(ev.Object) > 0 {
		attrs = append(attrs, slog.String("object", truncate(string(ev.Object), maxLoggedObject)))
	}
	log.LogAttrs(context.Background(), level, "Event", attrs...)
}

// truncate shortens s to at most n bytes plus an ellipsis, never splitting a UTF-8 sequence: how
// objects and messages are shown in logs and on terminals.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
