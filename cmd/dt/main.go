// Command dt runs and drives nodes of a dt network: see `dt help`.
package main

import (
	"os"

	"github.com/dt-cdn/dt/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:]))
}
