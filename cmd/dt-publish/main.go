// Command dt-publish publishes a static site to a dt network: `dt-publish [flags] DIR` is
// `dt publish [flags] DIR`; see `dt-publish --help`.
package main

import (
	"os"

	"github.com/dt-cdn/dt/internal/cli"
)

func main() {
	args := os.Args[1:]
	if len(args) == 1 && (args[0] == "--version" || args[0] == "-version") {
		os.Exit(cli.Main([]string{"version"}))
	}
	os.Exit(cli.Main(append([]string{"publish"}, args...)))
}
