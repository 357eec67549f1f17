// Command dt-publish publishes a static site to a dt network: `dt-publish [flags] DIR` is
// `dt publish [flags] DIR`; see `dt-publish --help`.
package main

import (
	"os"

	"github.com/dt-cdn/dt/internal/cli"
)

func main() {
	os.Exit(cli.Main(append([]string{"publish"}, os.Args[1:]...)))
}
