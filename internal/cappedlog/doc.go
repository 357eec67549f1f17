// Package cappedlog writes a log file that never grows past a fixed size and always holds the
// newest data, as the original node-distributed-table load test keeps its 1.log and 2.log "no
// larger than 10 million utf-8 characters".
//
// # Guarantees
//
// The file never holds more than the cap (in bytes, so never more than cap UTF-8 characters
// either), including in the middle of a write. When a write would pass the cap, the file is
// rewritten to hold only the newest half of the cap, starting at a line boundary when the kept
// half contains one, and writing goes on from there. The newest byte written is always the last
// byte of the file.
//
// # Caveats
//
// Only this writer may write to the file: it tracks the size itself. A reader following the file
// (tail -f) sees it shrink at each rotation. Nothing is fsynced: the log is for reading after a
// run, not for crash recovery.
package cappedlog
