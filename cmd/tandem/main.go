// Command tandem is the two-way sync daemon and its command line. main only wires the real world (registry,
// stdout/stderr, signals) into the cli package and turns the outcome into the exit code: 0 success, 1 errors
// and safety stops, 2 usage errors.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"syscall"

	"github.com/tandemsync/tandem/cmd/tandem/internal/cli"
	"github.com/tandemsync/tandem/cmd/tandem/internal/gcpace"
)

func main() {
	// Ctrl-C or a service stop cancels the pass: actions in flight end at their next check, and a partial
	// download stays a temp file that the next pass removes.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	stopPacing := gcpace.Start() // fewer collections while the live heap is small (gcpace)
	oneMoreProc()
	stopProfile := record("TANDEM_CPUPROFILE", os.Getenv("TANDEM_CPUPROFILE"), pprof.StartCPUProfile, pprof.StopCPUProfile)
	stopTrace := record("TANDEM_TRACE", os.Getenv("TANDEM_TRACE"), trace.Start, trace.Stop)
	blockFile := os.Getenv("TANDEM_BLOCKPROFILE")
	if blockFile != "" {
		runtime.SetBlockProfileRate(1) // every blocking event: a first sync's time is mostly waits
	}
	code := cli.Execute(ctx, cli.NewApp(cli.NewRegistry()), os.Args[1:])
	stopProfile()
	stopTrace()
	writeProfile("allocs", "TANDEM_ALLOCPROFILE", os.Getenv("TANDEM_ALLOCPROFILE"))
	writeProfile("block", "TANDEM_BLOCKPROFILE", blockFile)
	stopPacing()
	stop()
	os.Exit(code)
}

// oneMoreProc runs Go code on one more thread than the runtime would (its default: the CPUs it may use), unless
// GOMAXPROCS is set. A transfer's system calls block in the kernel (a folder's lock, a write-back, a flush) and
// keep their processor until the runtime's monitor takes it back; with as many processors as CPUs, a CPU then
// idles while hundreds of transfers wait to run. A first sync of 10,000 small files on 2 CPUs took 2.03 s with 2
// processors and 1.77 s with 3 (medians of 10 interleaved runs; 4 was no better than 3); with 1 it took 4.3 s
// against 2.1 s with 2, which is what a one-CPU machine would see. The cost: one more OS thread running Go code,
// and the count is fixed at start-up (setting it ends the runtime's own following of a container's CPU limit).
func oneMoreProc() {
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(runtime.GOMAXPROCS(0) + 1)
	}
}

// record runs a recording of the whole run into file when it is set: a Go CPU profile (TANDEM_CPUPROFILE, for
// the performance work in test/bench: perf on this VM mostly sees the hypervisor) or a runtime execution trace
// (TANDEM_TRACE: which goroutines ran, waited or sat in system calls when, which no profile shows over time). It
// returns what ends the recording. One that cannot start is reported and the run goes on without it.
func record(env, file string, start func(io.Writer) error, stop func()) func() {
	if file == "" {
		return func() {}
	}
	f, err := os.Create(file)
	if err == nil {
		if err = start(f); err != nil {
			f.Close()
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "tandem: %s: %v (running without it)\n", env, err)
		return func() {}
	}
	return func() {
		stop()
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
