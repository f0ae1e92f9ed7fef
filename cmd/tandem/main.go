// Command tandem is the two-way sync daemon and its command line. main only wires the real world (registry,
// stdout/stderr, signals) into the cli package and turns the outcome into the exit code: 0 success, 1 errors
// and safety stops, 2 usage errors.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/tandemsync/tandem/cmd/tandem/internal/cli"
)

func main() {
	// Ctrl-C or a service stop cancels the pass: actions in flight end at their next check, and a partial
	// download stays a temp file that the next pass removes.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Execute(ctx, cli.NewApp(cli.NewRegistry()), os.Args[1:])
	stop()
	os.Exit(code)
}
