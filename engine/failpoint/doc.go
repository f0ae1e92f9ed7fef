// Package failpoint names the points in the engine where a crash test may kill, panic, stall or fail the
// process (RELIABILITY.md section 6).
//
// In the default build Hit is a constant no-op that returns nil. Built with -tags failpoints, Hit reads
// TANDEM_FAILPOINTS once: a list of terms separated by ';', each `name=action[@nth]` where action is kill
// (SIGKILL to the process itself, a true kill -9), panic, sleep(ms), error (Hit returns an error) or stop
// (SIGSTOP to the process itself, until the test sends SIGCONT). With @nth
// the action fires on the nth hit of that point only; without it, on every hit. `name=value(N)` is not an
// action but a number Int returns (a smaller chunk size, so that a tiny file takes the chunked upload).
//
// The points are named `area.what`: the executor's (upload.afterPut, commit.before, ...), the state store's
// (state.update.beforeCommit, ...), the engine's cursor, journal, sweep and trash steps, localdir's writes
// and trash, every provider request after the server answered and before the answer is read
// (http.<op>.answered), the providers' chunked uploads and token refreshes. test/e2e/crash_points_test.go
// lists them all and kills tandem at each.
package failpoint
