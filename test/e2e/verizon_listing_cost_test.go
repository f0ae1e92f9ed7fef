package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tandemsync/tandem/remote"
	"github.com/tandemsync/tandem/remote/verizon"
	"github.com/tandemsync/tandem/test/testenv"
)

// TestVerizonListingCost measures what the daemon's Verizon feed costs per change: a delta that answers 200 is
// followed by one complete fullview (remote/verizon/cursor.go), which the daemon's poller and the pass it starts
// share. The tree holds enough files that a complete listing is far larger than any delta here, so the two are
// told apart by the size of the answer. Counted per change: a remote edit (the poller's read and the pass's
// read of the same cursor), a local edit (the pass's read after its own upload), and a write outside tandem's
// folder in the same virtual folder (a phone's photo upload), which a delta cannot tell from a change inside.
func TestVerizonListingCost(t *testing.T) {
	t.Parallel()
	p := providers[1]
	if p.name != "verizon" {
		t.Fatalf("providers[1] is %s", p.name)
	}
	e := newPenv(t, p)
	endpoint, caFile := loginForDaemon(t, e)
	const files = 150
	e.with(func(ctx context.Context, r remote.Remote) error {
		// docs too: the remote edit measured below is then one change, not a folder create and a write that a
		// poll on a loaded machine may fall between.
		for _, dir := range []string{"bulk", "docs"} {
			if err := mkdirAll(ctx, r, dir); err != nil {
				return err
			}
		}
		for i := range files {
			data := fmt.Sprintf("bulk file %d, padding the listing", i)
			if _, err := r.Put(ctx, remote.Path(fmt.Sprintf("bulk/file-with-a-longish-name-%03d.txt", i)),
				strings.NewReader(data), int64(len(data)), time.Now(), remote.Precondition{}); err != nil {
				return err
			}
			e.written[sum(data)] = "remote"
			e.ever[sum(data)] = true
		}
		return nil
	})
	conf := writeProviderConfig(t, p, e.L, endpoint, caFile, time.Second)
	d := testenv.StartDaemon(t, bin, conf, "XDG_CONFIG_HOME="+e.xdg)
	d.WaitFor("the first pass", arrivalTimeout, func(s *testenv.DaemonStatus) bool {
		return len(s.Pairs) == 1 && s.Pairs[0].Idle() && s.Pairs[0].LastSync != nil
	})
	waitSettled(t, e, d)
	// A complete listing of this tree is over files*200 bytes; a delta naming one file is under 2 KB.
	complete := func() (full, deltas int) {
		for _, x := range e.emu.Log(t) {
			if x.Op != "fullview" || x.Status != 200 {
				continue
			}
			if x.BytesOut > files*200 {
				full++
			} else {
				deltas++
			}
		}
		return full, deltas
	}
	measure := func(what string, change func(), arrived func()) int {
		t.Helper()
		e.emu.ClearLog(t)
		change()
		arrived()
		d.WaitFor("the pair to be idle", arrivalTimeout, func(s *testenv.DaemonStatus) bool {
			return len(s.Pairs) == 1 && s.Pairs[0].Idle()
		})
		// Two more poll intervals: a listing the change still causes after the pair looks idle is counted too.
		// (waitSettled lists the remote itself, so it runs after the count.)
		for i := 0; i < 2; i++ {
			polls := ops(e.emu.Log(t), `^fullview$`)
			d.WaitFor("another poll", arrivalTimeout, func(*testenv.DaemonStatus) bool {
				return ops(e.emu.Log(t), `^fullview$`) > polls
			})
		}
		full, deltas := complete()
		defer waitSettled(t, e, d)
		t.Logf("%s: %d complete listings, %d deltas with changes, %d fullview requests in all (ops %v)", what, full,
			deltas, ops(e.emu.Log(t), `^fullview$`), testenv.OpCounts(e.emu.Log(t)))
		return full
	}
	// The poller's listing answers the pass's read of the same cursor too (within 30 s, no write between).
	if n := measure("one remote edit", func() { e.rwrite("docs/remote.txt", "r1 in the cloud") },
		func() { waitLocal(t, e, "docs/remote.txt", "r1 in the cloud") }); n > 1 {
		t.Errorf("one remote edit cost %d complete listings, want 1", n)
	}
	// The pass's read after its own upload; the poller may read in between from the same cursor and take one
	// of its own when the upload is still running (its answer is then not reused).
	if n := measure("one local edit", func() { e.lwrite("docs/local.txt", "l1 on the laptop") },
		func() { waitRemote(t, e, "docs/local.txt", "l1 on the laptop") }); n > 2 {
		t.Errorf("one local edit cost %d complete listings, want at most 2", n)
	}
	// The phone's folder exists before the count starts: creating it is a change of its own, and a poll that
	// falls between the folder's creation and the upload (a loaded machine: make flake run 4) rightly pays a
	// listing for each. One write is what this measures.
	at, rt := e.mint()
	phone, err := verizon.Open(context.Background(), nil, "/VZMOBILE/Photos", remote.OpenOptions{Endpoint: e.emu.Endpoint,
		AccessToken: remote.Secret(at), RefreshToken: remote.Secret(rt), CAFile: e.emu.CAFile})
	if err != nil {
		t.Fatal(err)
	}
	defer phone.Close()
	e.emu.ClearLog(t)
	if err := phone.(interface{ InitRoot(context.Context) error }).InitRoot(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Its creation reaches the daemon's poller, and the complete listing it costs is taken, before the count
	// starts.
	d.WaitFor("the listing the phone's folder costs", arrivalTimeout, func(*testenv.DaemonStatus) bool {
		full, _ := complete()
		return full > 0
	})
	if n := measure("one write outside tandem's folder", func() {
		if _, err := phone.Put(context.Background(), "IMG_0001.jpg", strings.NewReader("a photo"), 7, time.Now(),
			remote.Precondition{}); err != nil {
			t.Fatal(err)
		}
	}, func() {}); n > 1 {
		t.Errorf("a write outside tandem's folder cost %d complete listings, want 1", n)
	}
}
