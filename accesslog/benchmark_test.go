package accesslog

import "testing"

// BenchmarkFormat measures the formatting of a line, which Log does on the request's goroutine.
func BenchmarkFormat(b *testing.B) {
	var r record
	r.set(entry(1))
	var c clock
	for _, f := range []Format{JSON, Combined} {
		b.Run(f.String(), func(b *testing.B) {
			b.ReportAllocs()
			var buf []byte
			for b.Loop() {
				buf = appendLine(buf[:0], &r, f, false, &c)
			}
		})
	}
}

// BenchmarkLog measures what a request pays: formatting its line and copying it into the queue.
func BenchmarkLog(b *testing.B) {
	const queue = 1024
	l, err := New(Config{Path: Stdout, Stdout: nopWriter{}, Queue: queue})
	if err != nil {
		b.Fatal(err)
	}
	e := entry(1)
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		l.Log(e)
		if n++; n%queue == 0 {
			b.StopTimer()
			l.writePending()
			b.StartTimer()
		}
	}
	if s := l.Stats(); s.QueueFull > 0 {
		b.Fatalf("%d records dropped", s.QueueFull)
	}
}

type nopWriter struct{}

func (nopWriter) Write(p []byte) (int, error) { return len(p), nil }
