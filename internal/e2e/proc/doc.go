// Package proc holds end-to-end tests over real processes: the dt and dt-publish binaries, built
// once by TestMain, run on loopback as a hub node, three edges and a redirector, each with its
// own data directory and log file, and driven the way an operator drives them: dt-publish,
// dt rollback, kill -9, SIGTERM, and a network partition made with internal/faultnet; and with
// several sites, dt site, dt grant and dt revoke, each site asked for by Host and TLS server name.
//
// internal/e2e tests the same parts inside one process, where failures can be staged precisely.
// This package checks what only separate processes show: the command-line flags and exit codes,
// the ready files that report bound addresses, state on disk surviving a kill -9, and every byte
// between processes crossing a real socket.
//
// The tests skip under -short. Child processes are plain builds (not race-instrumented, which
// would only slow them); each gets SIGKILL when the test process dies (Linux), and every one is
// stopped with SIGTERM, and checked to exit cleanly, when its test ends. The log of each process
// is printed when a test fails.
package proc
