package cli

import "errors"

// Errors of the dt command. Commands wrap them with what they were doing; check them with
// errors.Is.
var (
	// ErrUsage is returned (wrapped with the reason) when a command line is malformed. Run prints
	// it with the command's usage and exits 2.
	ErrUsage = errors.New("cli: usage error")
	// ErrNoMasterKey is returned when a command that writes to the table (node --master, add,
	// remove) runs with a keys directory that has no master.key.
	ErrNoMasterKey = errors.New("cli: a master needs master.key in the keys directory")
	// ErrLost is returned by loadtest when node 2 did not end up with every object.
	ErrLost = errors.New("cli: objects lost")
	// ErrTimeout is returned by loadtest when the counts did not settle within --timeout.
	ErrTimeout = errors.New("cli: timed out")
	// ErrChildExited is returned by loadtest when a node process exits before it is stopped.
	ErrChildExited = errors.New("cli: node process exited early")

	// errHelp is returned when --help or -h was given and usage was printed: Run exits 0.
	errHelp = errors.New("cli: help requested")
)
