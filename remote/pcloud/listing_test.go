package pcloud

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tandemsync/tandem/remote"
	"github.com/tandemsync/tandem/remote/pcloud/emulator"
)

// Issue 10 item 4: a recursive listing whose JSON answer is larger than the 64 MiB a JSON answer was capped at
// (17,000 items under the fat-listing variant: about 75 MiB) is listed, streamed, in one request.
func TestListingLargerThan64MiB(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("a 75 MiB listing")
	}
	ctx := context.Background()
	run, r, _ := pair(t, emulator.Options{Variants: []string{emulator.VariantFatListing}}, Options{})
	if err := run.Emu.Populate("/Sync", 17, 1000); err != nil {
		t.Fatal(err)
	}
	n := 0
	if err := r.Walk(ctx, remote.Root, func(remote.Entry) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	if n != 17*1000+17 {
		t.Fatalf("walked %d entries, want %d", n, 17*1000+17)
	}
	if got := countOps(run, "listfolder"); got > 3 {
		t.Errorf("%d listfolder requests: the big listing was not read in one", got)
	}
}

var bigListing = flag.Int("pcloud.rss-items", 0, "TestListingRSS: list this many items (e.g. 500000) and report RssAnon")

// TestListingRSS measures the client's anonymous resident memory (RssAnon, sampled every 2 ms) while it walks
// and Heads a folder of -pcloud.rss-items items served by an emulator in another process (so the server's
// memory is not counted). Not in make test: go test ./remote/pcloud -run TestListingRSS -pcloud.rss-items 500000 -v
func TestListingRSS(t *testing.T) {
	if *bigListing == 0 {
		t.Skip("give -pcloud.rss-items N")
	}
	folders := max(*bigListing/1000, 1)
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperRSSEmulator$")
	cmd.Env = append(os.Environ(), "PCLOUD_RSS_HELPER="+strconv.Itoa(folders), "PCLOUD_RSS_VARIANT="+os.Getenv("PCLOUD_RSS_VARIANT"))
	stdin, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = stdin.Close(); _ = cmd.Wait() }()
	var url, tok string
	if _, err := fmt.Fscan(bufio.NewReader(out), &url, &tok); err != nil {
		t.Fatalf("helper: %v", err)
	}
	c, err := New(nil, "/d00000", Options{Endpoint: url, Token: remote.Secret(tok)})
	if err != nil {
		t.Fatal(err)
	}
	measure := func(what string, f func() error) {
		runtime.GC()
		debug.FreeOSMemory()
		base := rssAnon(t)
		peak := base
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			tick := time.NewTicker(2 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
					peak = max(peak, rssAnon(t))
				}
			}
		}()
		start := time.Now()
		err := f()
		close(stop)
		<-done
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		t.Logf("%s of %d items: %.1f s, RssAnon before %d MiB, peak %d MiB", what, folders*1000+folders,
			time.Since(start).Seconds(), base>>20, peak>>20)
	}
	ctx := context.Background()
	n := 0
	measure("Walk", func() error {
		return c.Walk(ctx, remote.Root, func(remote.Entry) error { n++; return nil })
	})
	if n != folders*1000+folders {
		t.Fatalf("walked %d", n)
	}
	measure("Head", func() error { _, err := c.Head(ctx); return err })
}

// rssAnon reads RssAnon from /proc/self/status, in bytes.
func rssAnon(t *testing.T) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skip("no /proc")
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "RssAnon:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// TestHelperRSSEmulator is TestListingRSS's server process: an emulator holding /d00000 with N folders of 1,000
// files, on loopback, until stdin closes.
func TestHelperRSSEmulator(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("PCLOUD_RSS_HELPER"))
	if n == 0 {
		t.Skip("helper process only")
	}
	o := emulator.Options{DataDir: t.TempDir()}
	if v := os.Getenv("PCLOUD_RSS_VARIANT"); v != "" {
		o.Variants = []string{v}
	}
	e, err := emulator.New(nil, o)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if err := e.Populate("/", 1, 0); err != nil {
		t.Fatal(err)
	}
	if err := e.Populate("/d00000", n, 1000); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = http.Serve(l, e.Handler()) }()
	fmt.Printf("http://%s %s\n", l.Addr(), e.Token())
	_, _ = io.Copy(io.Discard, os.Stdin)
}
