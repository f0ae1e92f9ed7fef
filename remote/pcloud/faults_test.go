package pcloud

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tandemsync/tandem/remote"
	"github.com/tandemsync/tandem/remote/internal/emukit"
	"github.com/tandemsync/tandem/remote/pcloud/emulator"
)

// TestFaultsSurvived injects each fault kind of emukit into the call it hurts most and checks that the client
// converges: the operation succeeds (or fails cleanly where data would be wrong), the emulator's tree is what
// was meant, and no retried create left a "name (1)" duplicate.
func TestFaultsSurvived(t *testing.T) {
	t.Parallel()
	small := []byte("small file contents\n")
	big := randomBytes(3<<20, 2)
	type env = faultEnv
	cases := []struct {
		name  string
		rule  emukit.Rule
		setup func(t *testing.T, e env)
		op    func(t *testing.T, e env) error
		check func(t *testing.T, e env)
	}{
		{name: "5xx on listfolder",
			rule:  emukit.Rule{Match: "^listfolder$", Times: 3, Action: emukit.Action{Do: emukit.DoStatus, Status: 502}},
			setup: func(t *testing.T, e env) { mustPut(t, e.r, "a.txt", small, remote.Precondition{}) },
			op: func(t *testing.T, e env) error {
				n := 0
				return errors.Join(e.r.Walk(context.Background(), remote.Root, func(remote.Entry) error { n++; return nil }),
					map[bool]error{true: nil, false: errors.New("walk saw nothing")}[n > 0])
			}},
		{name: "429 with Retry-After on uploadfile",
			rule: emukit.Rule{Match: "^uploadfile$", Times: 1, Action: emukit.Action{Do: emukit.DoStatus, Status: 429, RetryAfter: 1}},
			op: func(t *testing.T, e env) error {
				_, err := e.r.Put(context.Background(), "a.txt", bytes.NewReader(small), int64(len(small)), time.Now(), remote.Precondition{Absent: true})
				return err
			},
			check: func(t *testing.T, e env) {
				var at []time.Time
				for _, l := range e.run.Log() {
					if l.Op == "uploadfile" {
						at = append(at, l.Time)
					}
				}
				if len(at) != 2 || at[1].Sub(at[0]) < 900*time.Millisecond {
					t.Errorf("uploadfile requests at %v: the retry must wait for Retry-After: 1", at)
				}
			}},
		{name: "HTTP-date Retry-After on diff",
			rule: emukit.Rule{Match: "^diff$", Times: 1, Action: emukit.Action{Do: emukit.DoStatus, Status: 503, RetryAfter: 1, RetryAfterDate: true}},
			op:   func(t *testing.T, e env) error { _, err := e.r.Stat(context.Background(), remote.Root); return err }},
		{name: "result 4000 (rate limit)",
			rule:  emukit.Rule{Match: "^(diff|checksumfile)$", Times: 2, Action: emukit.Action{Do: emulator.HookResult, Code: 4000}},
			setup: func(t *testing.T, e env) { mustPut(t, e.r, "a.txt", small, remote.Precondition{}) },
			op: func(t *testing.T, e env) error {
				_, _, err := e.r.HashOf(context.Background(), "a.txt", "sha1")
				return err
			}},
		{name: "result 5000 on a mutation is checked, then retried",
			rule:  emukit.Rule{Match: "^renamefile$", Times: 1, Action: emukit.Action{Do: emulator.HookResult, Code: 5000}},
			setup: func(t *testing.T, e env) { mustPut(t, e.r, "a.txt", small, remote.Precondition{}) },
			op: func(t *testing.T, e env) error {
				_, err := e.r.Move(context.Background(), "a.txt", "b.txt", remote.Precondition{})
				return err
			},
			check: wantTree("/Sync/b.txt")},
		{name: "result 5000 on reads",
			rule:  emukit.Rule{Match: "^(diff|checksumfile)$", Times: 2, Action: emukit.Action{Do: emulator.HookResult, Code: 5000}},
			setup: func(t *testing.T, e env) { mustPut(t, e.r, "a.txt", small, remote.Precondition{}) },
			op: func(t *testing.T, e env) error {
				_, _, err := e.r.HashOf(context.Background(), "a.txt", "sha1")
				return err
			}},
		{name: "reset mid-body on download",
			rule:  emukit.Rule{Match: "^content$", Times: 2, Action: emukit.Action{Do: emukit.DoResetAfter, Bytes: 100_000}},
			setup: func(t *testing.T, e env) { mustPut(t, e.r, "big.bin", big, remote.Precondition{}) },
			op:    readBack("big.bin", big)},
		{name: "truncated download",
			rule:  emukit.Rule{Match: "^content$", Times: 1, Action: emukit.Action{Do: emukit.DoTruncateAt, Bytes: 1 << 20}},
			setup: func(t *testing.T, e env) { mustPut(t, e.r, "big.bin", big, remote.Precondition{}) },
			op:    readBack("big.bin", big)},
		{name: "reset mid-body on a JSON answer",
			rule: emukit.Rule{Match: "^listfolder$", Times: 1, Action: emukit.Action{Do: emukit.DoResetAfter, Bytes: 20}},
			op:   func(t *testing.T, e env) error { _, err := e.r.Mkdir(context.Background(), "d"); return err }},
		{name: "slow body",
			rule:  emukit.Rule{Match: "^content$", Times: 1, Action: emukit.Action{Do: emukit.DoSlowBody, Rate: 64 << 10}},
			setup: func(t *testing.T, e env) { mustPut(t, e.r, "s.txt", randomBytes(32<<10, 3), remote.Precondition{}) },
			op:    readBack("s.txt", randomBytes(32<<10, 3))},
		{name: "garbage instead of JSON",
			rule:  emukit.Rule{Match: "^(checksumfile|stat)$", Times: 2, Action: emukit.Action{Do: emukit.DoGarbage}},
			setup: func(t *testing.T, e env) { mustPut(t, e.r, "a.txt", small, remote.Precondition{}) },
			op:    readBack("a.txt", small)},
		{name: "ack loss on uploadfile",
			rule: emukit.Rule{Match: "^uploadfile$", Times: 1, Action: emukit.Action{Do: emukit.DoApplyThenReset}},
			op: func(t *testing.T, e env) error {
				_, err := e.r.Put(context.Background(), "a.txt", bytes.NewReader(small), int64(len(small)), time.Now(), remote.Precondition{Absent: true})
				return err
			},
			check: func(t *testing.T, e env) {
				if n := countOps(e.run, "uploadfile"); n != 1 {
					t.Errorf("uploadfile sent %d times; the lost answer's upload had landed", n)
				}
			}},
		{name: "ack loss on upload_write and upload_save",
			rule: emukit.Rule{Match: "^upload_(write|save)$", Every: 2, Times: 3, Action: emukit.Action{Do: emukit.DoApplyThenReset}},
			op: func(t *testing.T, e env) error {
				_, err := e.r.Put(context.Background(), "big.bin", bytes.NewReader(big), int64(len(big)), time.Now(), remote.Precondition{Absent: true})
				return err
			},
			check: func(t *testing.T, e env) {
				if got := e.run.Snapshot()["/Sync/big.bin"].SHA1; got != sha1Hex(big) {
					t.Errorf("stored sha1 %s, want %s", got, sha1Hex(big))
				}
			}},
		{name: "ack loss on renamefile",
			rule:  emukit.Rule{Match: "^renamefile$", Times: 1, Action: emukit.Action{Do: emukit.DoApplyThenReset}},
			setup: func(t *testing.T, e env) { mustPut(t, e.r, "a.txt", small, remote.Precondition{}) },
			op: func(t *testing.T, e env) error {
				_, err := e.r.Move(context.Background(), "a.txt", "b.txt", remote.Precondition{})
				return err
			},
			check: wantTree("/Sync/b.txt")},
		{name: "ack loss on renamefolder",
			rule:  emukit.Rule{Match: "^renamefolder$", Times: 1, Action: emukit.Action{Do: emukit.DoApplyThenReset}},
			setup: func(t *testing.T, e env) { _, _ = e.r.Mkdir(context.Background(), "d") },
			op: func(t *testing.T, e env) error {
				_, err := e.r.Move(context.Background(), "d", "e", remote.Precondition{})
				return err
			},
			check: wantTree("/Sync/e")},
		{name: "ack loss on deletefile",
			rule:  emukit.Rule{Match: "^deletefile$", Times: 1, Action: emukit.Action{Do: emukit.DoApplyThenReset}},
			setup: func(t *testing.T, e env) { mustPut(t, e.r, "a.txt", small, remote.Precondition{}) },
			op: func(t *testing.T, e env) error {
				return e.r.Delete(context.Background(), "a.txt", remote.Precondition{})
			},
			check: wantTree()},
		{name: "ack loss on deletefolder",
			rule:  emukit.Rule{Match: "^deletefolder$", Times: 1, Action: emukit.Action{Do: emukit.DoApplyThenReset}},
			setup: func(t *testing.T, e env) { _, _ = e.r.Mkdir(context.Background(), "d") },
			op:    func(t *testing.T, e env) error { return e.r.Delete(context.Background(), "d", remote.Precondition{}) },
			check: wantTree()},
		{name: "ack loss on mkdir",
			rule:  emukit.Rule{Match: "^createfolderifnotexists$", Times: 1, Action: emukit.Action{Do: emukit.DoApplyThenReset}},
			op:    func(t *testing.T, e env) error { _, err := e.r.Mkdir(context.Background(), "d"); return err },
			check: wantTree("/Sync/d")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			run, r, _ := pair(t, emulator.Options{}, Options{ChunkThreshold: 1 << 20, ChunkSize: 1 << 20})
			e := env{run: run, r: r}
			if tc.setup != nil {
				tc.setup(t, e)
			}
			run.ResetLog()
			if err := run.SetFaults(tc.rule); err != nil {
				t.Fatal(err)
			}
			if err := tc.op(t, e); err != nil {
				t.Fatalf("with %s: %v", tc.rule.Action.Do, err)
			}
			fired := false
			for _, f := range run.Kit().Faults() {
				fired = fired || f.Fired > 0
			}
			if !fired {
				t.Fatalf("the fault never fired")
			}
			run.ClearFaults()
			if tc.check != nil {
				tc.check(t, e)
			}
			checkNoDuplicates(t, run)
		})
	}
}

// faultEnv is one fault case's emulator and client.
type faultEnv struct {
	run *emulator.Running
	r   *Client
}

// readBack downloads p and compares it with want: a cut or slowed body must still give exactly want.
func readBack(p string, want []byte) func(t *testing.T, e faultEnv) error {
	return func(t *testing.T, e faultEnv) error {
		got, err := readAllOf(t, e.r, p)
		if err != nil {
			return err
		}
		if !bytes.Equal(got, want) {
			t.Errorf("read %s: %d bytes that differ from the %d written", p, len(got), len(want))
		}
		return nil
	}
}

// wantTree checks the emulator holds exactly these paths (besides /Sync).
func wantTree(paths ...string) func(t *testing.T, e faultEnv) {
	return func(t *testing.T, e faultEnv) {
		snap := e.run.Snapshot()
		delete(snap, "/Sync")
		for _, p := range paths {
			if _, ok := snap[p]; !ok {
				t.Errorf("%s missing", p)
			}
			delete(snap, p)
		}
		for p := range snap {
			t.Errorf("unexpected %s", p)
		}
	}
}

func TestCorruptDownloadIsAnError(t *testing.T) {
	t.Parallel()
	run, r, _ := pair(t, emulator.Options{}, Options{})
	data := randomBytes(200_000, 4)
	mustPut(t, r, "c.bin", data, remote.Precondition{})
	if err := run.SetFaults(emukit.Rule{Match: "^content$", Times: 1, Action: emukit.Action{Do: emukit.DoCorruptByte, Offset: 1234}}); err != nil {
		t.Fatal(err)
	}
	got, err := readAllOf(t, r, "c.bin")
	if !errors.Is(err, remote.ErrCorrupt) {
		t.Fatalf("corrupted body: err %v after %d bytes, want ErrCorrupt", err, len(got))
	}
	if got, err := readAllOf(t, r, "c.bin"); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("clean read after the fault: %v", err)
	}
}
