package localdir_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tandemsync/tandem/remote"
)

// touchBack sets n's mtime to t (touch -r, cp -p, rsync -t): the rewrite keeps size and mtime.
func touchBack(t *testing.T, e *env, n string, mt time.Time) {
	t.Helper()
	var err error
	if e.fake != nil {
		err = e.fake.Chtimes(n, mt)
	} else {
		err = os.Chtimes(filepath.Join(e.root, n), mt, mt)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// Issue 9 hole 1: a rewrite in place that keeps size and mtime moves the fingerprint (ctime), so the revision
// changes and every precondition taken before it fails.
func TestFingerprintSeesInPlaceEdit(t *testing.T) {
	both(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		got := put(t, e, "f", "version-1\n", remote.Precondition{})
		st, err := e.d.Stat(ctx, "f")
		if err != nil {
			t.Fatal(err)
		}
		// Put stats again after its rename (which moves the ctime): what it returns is what is there.
		if st.Rev != got.Rev {
			t.Fatalf("Put returned Rev %s, a Stat right after says %s", got.Rev, st.Rev)
		}
		e.clk.Advance(time.Second)
		e.write("f", "version-2\n")
		touchBack(t, e, "f", got.ModTime)
		now, err := e.d.Stat(ctx, "f")
		if err != nil {
			t.Fatal(err)
		}
		if now.Size != got.Size || !now.ModTime.Equal(got.ModTime) || now.ID != got.ID {
			t.Fatalf("rewrite did not keep size, mtime and inode: %+v, was %+v", now, got)
		}
		if now.Rev == got.Rev {
			t.Fatalf("in-place rewrite with size and mtime kept: Rev unchanged (%s)", now.Rev)
		}
		if err := e.d.Delete(ctx, "f", remote.Precondition{Rev: got.Rev}); !errors.Is(err, remote.ErrConflict) {
			t.Errorf("Delete with the Rev from before the rewrite = %v, want ErrConflict", err)
		}
		if _, err := e.d.Put(ctx, "f", strings.NewReader("version-3\n"), 10, t0, remote.Precondition{Rev: got.Rev}); !errors.Is(err, remote.ErrConflict) {
			t.Errorf("Put with the Rev from before the rewrite = %v, want ErrConflict", err)
		}
		if s := mustRead(t, e, "f"); s != "version-2\n" {
			t.Errorf("f = %q, the rewrite was lost", s)
		}
	})
}
