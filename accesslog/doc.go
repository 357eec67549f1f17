// Package accesslog writes an edge's access log: one line per response, as JSON lines or in the
// Combined Log Format of Apache and nginx, to a file or to standard output.
//
// # Off the request path
//
// A request never waits for the log. Logger.Log formats the response's line on the request's
// goroutine (each field truncated to its cap, see MaxURIBytes; the time's text made once a
// second) and copies it into a ring of Config.Queue slots of RecordBytes, claimed with one
// compare-and-swap, without a lock. One goroutine, Logger.Run, writes the ring's lines every
// Config.FlushInterval, sooner when the ring is half full, in writes of up to 64 KiB, so that a
// busy edge pays neither a goroutine wake-up nor a system call per request. Lines come out in
// the order their slots were claimed: those of one goroutine in its order.
// When the ring is full (the disk is slow, or the writer is behind) the line is dropped and
// counted; when a write fails (the disk is full) the lines it held are dropped and counted.
// Neither ever stalls a response. Memory is bounded: the ring, allocated once, and the batch
// being written.
//
// # Rotation
//
// Logger.Reopen (on SIGHUP) closes the file and opens the path again, so that logrotate can
// rename the file and have the log continue in a new one. Config.MaxSize rotates by size instead,
// keeping Config.Keep old files (FILE.1 the newest). Standard output is neither reopened nor
// rotated.
//
// # Privacy
//
// With Config.TruncateIP the client's address is logged truncated to its /24 (IPv4) or /48
// (IPv6), the precision most analytics need and one that no longer names a household.
//
// # Caveats
//
// A write that fails part-way may leave a partial line in the file, the next line following it
// on the same line. Times are written in UTC.
package accesslog
