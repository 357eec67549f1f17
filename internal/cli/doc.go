// Package cli implements the dt command: keygen, node, add, remove, send, the CDN roles (edge,
// redirector, dns), publishing (publish, deploys, rollback), DNS publishing, resolve, demo,
// example, loadtest and version.
//
// Each subcommand lives in its own file as a run function taking a context, its arguments and an
// Env; its flags are parsed by a FlagSet of its own into a local struct, and may come before or
// after the positional arguments. Only Run (which Main calls) turns errors into exit codes:
//
//   - 0: success, and `dt help`, `dt help <command>`, `dt <command> --help` or `-h`, which print
//     usage, with every flag, on stdout;
//   - 2: a usage error (unknown command or flag, missing argument, bad flag value), printed as
//     one line and the command's usage on stderr;
//   - 1: any other failure, printed as `dt <command>: <error>` on stderr: one sentence without
//     the packages' prefixes, with a hint where the cause is a common one (a port below 1024, a
//     data directory another process holds, an unreadable key file).
//
// # Reaching the network
//
// Every command that dials peers checks their addresses first (a missing port is a usage
// error), follows each dial and handshake (internal/client's Watch), and gives up as soon as
// every peer has failed in a way a retry would not fix (a name that does not resolve, a refused
// handshake, a port that keeps refusing) or at --timeout, saying for each peer what happened and
// what to do.
//
// # Lifecycle
//
// Commands that run until stopped (node, example, loadtest) end cleanly when their context ends:
// Main cancels it on SIGINT or SIGTERM, and a second signal kills the process. Every goroutine a
// command starts is waited for before the command returns, and every node it opened is closed.
// `dt node` writes a heap profile on SIGUSR2.
//
// # Transient nodes
//
// add, remove and send join the network as a short-lived node (internal/client): it dials
// --peer, never listens, and keeps its data in a temporary directory removed on exit. add and
// remove return once a peer has applied the change (dt.Node.WaitReplicated), so the change
// outlives the command; send returns once the message is written to the link, with no proof of
// delivery (messages are never acknowledged, as in the original).
//
// # Load test
//
// loadtest re-executes its own binary (os.Executable) as two `dt loadtest-node` processes, reads
// their bound addresses from an inherited pipe and their progress from their admin /status, and
// keeps their logs with internal/cappedlog.
package cli
