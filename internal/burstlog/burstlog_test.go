package burstlog

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/dt-cdn/dt/internal/testkit/syncbuf"
)

func TestOneLinePerBurst(t *testing.T) {
	var buf syncbuf.Buffer
	l := &Logger{Log: slog.New(slog.NewTextHandler(&buf, nil)), Level: slog.LevelWarn, Msg: "limit hit", Window: 50 * time.Millisecond}
	ctx := context.Background()
	logged := 0
	for range 1000 {
		if l.Hit(ctx, slog.String("addr", "127.0.0.2")) {
			logged++
		}
	}
	if logged != 1 {
		t.Fatalf("1000 hits in one burst logged %d lines, want 1", logged)
	}
	time.Sleep(60 * time.Millisecond)
	if !l.Hit(ctx) {
		t.Fatal("the first hit after the window logged nothing")
	}
	out := buf.String()
	if n := strings.Count(out, "limit hit"); n != 2 {
		t.Fatalf("%d lines, want 2:\n%s", n, out)
	}
	if !strings.Contains(out, "also_since_last_line=999") {
		t.Fatalf("the second line does not count the 999 swallowed hits:\n%s", out)
	}
}

func TestNilLogDiscards(t *testing.T) {
	var l *Logger
	if l.Hit(context.Background()) {
		t.Fatal("a nil Logger logged")
	}
	if (&Logger{}).Hit(context.Background()) {
		t.Fatal("a Logger without Log logged")
	}
}
