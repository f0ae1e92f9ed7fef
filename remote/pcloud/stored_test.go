package pcloud

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tandemsync/tandem/remote"
	"github.com/tandemsync/tandem/remote/internal/emukit"
	"github.com/tandemsync/tandem/remote/pcloud/emulator"
)

// Issue 10 item 5: a server that stores another name than asked (VariantFoldBackslash) is believed: the upload
// is not recorded under the asked path (where nothing is), it fails as temporarily refused, naming what pCloud
// stored; the same for mkdir.
func TestServerRenamedUploadIsReported(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, r, _ := pair(t, emulator.Options{Variants: []string{emulator.VariantFoldBackslash}}, Options{})
	_, err := r.Put(ctx, "a\uFF3Cb.txt", bytes.NewReader([]byte("x")), 1, time.Now(), remote.Precondition{})
	if !errors.Is(err, remote.ErrUnavailable) || !strings.Contains(err.Error(), `stored it as`) {
		t.Fatalf("upload to a folded name: %v, want ErrUnavailable naming the stored name", err)
	}
	if _, err := r.Mkdir(ctx, "d\uFF3Ce"); !errors.Is(err, remote.ErrUnavailable) {
		t.Fatalf("mkdir of a folded name: %v", err)
	}
	// A name the server keeps works as before.
	mustPut(t, r, "plain.txt", []byte("p"), remote.Precondition{})
}

// Issue 10 item 8: a lost deletefile answer is checked with stat, which may describe the file in the trash
// (isdeleted: the default variant): the delete happened, and is not sent again (which would fail with 2009).
func TestLostDeleteAnswerSeesIsDeleted(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	run, r, _ := pair(t, emulator.Options{}, Options{})
	mustPut(t, r, "a.txt", []byte("a"), remote.Precondition{})
	if err := run.SetFaults(emukit.Rule{Match: "^deletefile$", Times: 1, Action: emukit.Action{Do: emukit.DoApplyThenReset}}); err != nil {
		t.Fatal(err)
	}
	if err := r.Delete(ctx, "a.txt", remote.Precondition{}); err != nil {
		t.Fatalf("delete with a lost answer: %v", err)
	}
	if n := countOps(run, "deletefile"); n != 1 {
		t.Errorf("deletefile sent %d times, want once", n)
	}
}

// Issue 10 item 8: errors sent with an HTTP error status carry pCloud's {result, error} and are judged by it:
// the root's refused recursive listing (1101, here with HTTP 400) still falls back to per-folder listing, and an
// unknown token (2094 with HTTP 401) is a login problem that names pCloud's code.
func TestErrorBodiesWithHTTPStatus(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	run := emulator.Start(t, emulator.Options{Variants: []string{emulator.VariantHTTPErrorStatus}})
	r := newClient(t, run, "/", Options{})
	if _, err := r.Mkdir(ctx, "d"); err != nil {
		t.Fatal(err)
	}
	mustPut(t, r, "d/f.txt", []byte("f"), remote.Precondition{})
	n := 0
	if err := r.Walk(ctx, remote.Root, func(remote.Entry) error { n++; return nil }); err != nil || n < 2 {
		t.Fatalf("walk of the account root: %d entries, %v", n, err)
	}
	bad := newClient(t, run, "/", Options{Token: "nope"})
	if _, err := bad.Stat(ctx, remote.Root); !errors.Is(err, remote.ErrUnauthorized) || !strings.Contains(err.Error(), "2094") {
		t.Fatalf("unknown token: %v, want ErrUnauthorized with 2094", err)
	}
}

// Issue 10 item 8: a token given without an endpoint is tried on the US host, then on the EU host, and the
// region that accepts it is used (not the US host by assumption).
func TestTokenWithoutEndpointFindsItsRegion(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	us := emulator.Start(t, emulator.Options{Token: "us-token"})
	eu := emulator.Start(t, emulator.Options{Token: "eu-token", Variants: []string{emulator.VariantEU}})
	hosts := [2]string{us.URL, eu.URL}
	r, err := openWith(ctx, nil, "/", remote.OpenOptions{AccessToken: "eu-token", StateDir: t.TempDir()}, hosts)
	if err != nil {
		t.Fatalf("open with an EU token: %v", err)
	}
	c := r.(*Client)
	if c.base.String() != eu.URL || !c.o.EU {
		t.Fatalf("EU token: endpoint %s (EU %v), want %s", c.base, c.o.EU, eu.URL)
	}
	if _, err := c.Stat(ctx, remote.Root); err != nil {
		t.Fatal(err)
	}
	r, err = openWith(ctx, nil, "/", remote.OpenOptions{AccessToken: "us-token", StateDir: t.TempDir()}, hosts)
	if err != nil || r.(*Client).base.String() != us.URL {
		t.Fatalf("US token: %v", err)
	}
	_, err = openWith(ctx, nil, "/", remote.OpenOptions{AccessToken: "nobody", StateDir: t.TempDir()}, hosts)
	if !errors.Is(err, remote.ErrUnauthorized) {
		t.Fatalf("unknown token: %v, want ErrUnauthorized", err)
	}
}
