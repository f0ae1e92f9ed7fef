package pcloud

import (
	"context"
	"flag"
	"testing"

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
