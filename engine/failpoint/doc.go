// Package failpoint names the points in the engine where a crash test may kill, panic, stall or fail the
// process (RELIABILITY.md section 6).
//
// In the default build Hit is a constant no-op that returns nil. Built with -tags failpoints, Hit reads
// TANDEM_FAILPOINTS once: a list of terms separated by ';', each `name=action[@nth]` where action is kill
// (SIGKILL to the process itself, a true kill -9), panic, sleep(ms), error (Hit returns an error) or stop
// (SIGSTOP to the process itself, until the test sends SIGCONT). With @nth
// the action fires on the nth hit of that point only; without it, on every hit.
package failpoint
