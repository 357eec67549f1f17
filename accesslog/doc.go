// Package accesslog writes an edge's access log: one line per response, as JSON lines or in the
// Combined Log Format of Apache and nginx, to a file or to standard output.
//
// # Off the request path
//
// A request never waits for the log. Logger.Log copies the response's fields into a record of
// fixed size (each field truncated to its cap, see MaxURIBytes) in a queue of Config.Queue
// records, under a lock held only for that copy. One goroutine, Logger.Run, takes the whole queue
// every Config.FlushInterval (sooner when a shard of it is half full), formats the records and writes them
// in batches, so that a busy edge pays neither a goroutine wake-up nor a system call per request.
// When the queue is full (the disk is slow, or the writer is behind) the record is dropped and
// counted; when a write fails (the disk is full) the lines it held are dropped and counted.
// Neither ever stalls a response. Memory is bounded: two queues (the one filling, the one being
// written) of Queue records of RecordBytes each, allocated once.
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
