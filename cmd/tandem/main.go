// Command tandem is the two-way sync daemon and its command line. main only wires the real world (registry,
// stdout/stderr, signals) into the cli package and turns the outcome into the exit code: 0 success, 1 errors
// and safety stops, 2 usage errors.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"syscall"

	"github.com/tandemsync/tandem/cmd/tandem/internal/cli"
	"github.com/tandemsync/tandem/cmd/tandem/internal/gcpace"
)

func main() {
	// Ctrl-C or a service stop cancels the pass: actions in flight end at their next check, and a partial
	// download stays a temp file that the next pass removes.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	stopPacing := gcpace.Start() // fewer collections while the live heap is small (gcpace)
	stopProfile := cpuProfile(os.Getenv("TANDEM_CPUPROFILE"))
	blockFile := os.Getenv("TANDEM_BLOCKPROFILE")
	if blockFile != "" {
		runtime.SetBlockProfileRate(1) // every blocking event: a first sync's time is mostly waits
	}
	code := cli.Execute(ctx, cli.NewApp(cli.NewRegistry()), os.Args[1:])
	stopProfile()
	writeProfile("allocs", "TANDEM_ALLOCPROFILE", os.Getenv("TANDEM_ALLOCPROFILE"))
	writeProfile("block", "TANDEM_BLOCKPROFILE", blockFile)
	stopPacing()
	stop()
	os.Exit(code)
}

// cpuProfile writes a Go CPU profile of the whole run to file when it is set (TANDEM_CPUPROFILE, for the
// performance work in test/bench: perf on this VM mostly sees the hypervisor). A profile that cannot start is
// reported and the run goes on without it.
func cpuProfile(file string) func() {
	if file == "" {
		return func() {}
	}
	f, err := os.Create(file)
	if err == nil {
		if err = pprof.StartCPUProfile(f); err != nil {
			f.Close()
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "tandem: TANDEM_CPUPROFILE: %v (running without a profile)\n", err)
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}

// writeProfile writes the run's profile name to file when it is set: "allocs" (TANDEM_ALLOCPROFILE, sampled), a
// pass's garbage being what its collector spends CPU on; "block" (TANDEM_BLOCKPROFILE, every event), where
// goroutines waited (syncs, commits, the pool), which a CPU profile does not show.
func writeProfile(name, env, file string) {
	if file == "" {
		return
	}
	f, err := os.Create(file)
	if err == nil {
		err = pprof.Lookup(name).WriteTo(f, 0)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "tandem: %s: %v\n", env, err)
	}
}
