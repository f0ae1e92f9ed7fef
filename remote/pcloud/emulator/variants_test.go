package emulator

import (
	"net/url"
	"strings"
	"testing"
)

// TestCompactionDefaultSendsNoSignal: by default a compaction keeps diffids and refuses no cursor, and a delete
// of an item created before the cursor vanishes with its create (the client cannot tell: only the cursor's age
// can).
func TestCompactionDefaultSendsNoSignal(t *testing.T) {
	r := Start(t, Options{})
	a := newAPI(t, r)
	x := a.mkdir(0, "x")
	var d tDiff
	a.must("diff", &d, "last", "0")
	old := d.DiffID
	a.must("deletefolder", nil, "folderid", u(x))
	a.mkdir(0, "y")
	r.DropHistory()
	a.must("diff", &d, "diffid", u(old))
	if got := strings.Join(d.events(), " "); got != "createfolder" {
		t.Fatalf("old cursor after a silent compaction: %q, want only y's createfolder (x's delete is gone)", got)
	}
	// Paging the compacted history from 0 with limit 1 walks to the end without a reset.
	var all []string
	from := "0"
	for i := 0; i < 10; i++ {
		a.must("diff", &d, "diffid", from, "limit", "1")
		if len(d.Entries) == 0 {
			break
		}
		all = append(all, d.events()...)
		from = u(d.DiffID)
	}
	if got := strings.Join(all, " "); got != "modifyuserinfo createfolder" {
		t.Errorf("paged compacted history %q", got)
	}
}

// TestCompactionResetPagesFromZero: under VariantResetOnCompaction, paging from 0 with a limit through the
// compacted history is not answered with `reset` (the ids it lands on are the kept ones).
func TestCompactionResetPagesFromZero(t *testing.T) {
	r := Start(t, Options{Variants: []string{VariantResetOnCompaction}})
	a := newAPI(t, r)
	for _, n := range []string{"a", "b", "c"} {
		a.mkdir(0, n)
	}
	r.DropHistory()
	var d tDiff
	var all []string
	from := "0"
	for i := 0; i < 10; i++ {
		a.must("diff", &d, "diffid", from, "limit", "1")
		if len(d.Entries) == 0 {
			break
		}
		all = append(all, d.events()...)
		from = u(d.DiffID)
	}
	if got := strings.Join(all, " "); got != "modifyuserinfo createfolder createfolder createfolder" {
		t.Errorf("paged compacted history %q", got)
	}
}

// TestCancellingPairsDropped: by default a folder created and deleted inside one reply is left out, so the
// reply is shorter than limit; VariantKeepCancelling keeps both events.
func TestCancellingPairsDropped(t *testing.T) {
	for _, keep := range []bool{false, true} {
		o := Options{}
		if keep {
			o.Variants = []string{VariantKeepCancelling}
		}
		r := Start(t, o)
		a := newAPI(t, r)
		var d tDiff
		a.must("diff", &d, "last", "0")
		from := d.DiffID
		tmp := a.mkdir(0, "tmp")
		a.must("deletefolder", nil, "folderid", u(tmp))
		a.mkdir(0, "kept")
		a.must("diff", &d, "diffid", u(from), "limit", "3")
		got := strings.Join(d.events(), " ")
		want := "createfolder"
		if keep {
			want = "createfolder deletefolder createfolder"
		}
		if got != want {
			t.Errorf("keep=%v: events %q, want %q", keep, got, want)
		}
	}
}

// TestRestoredItemIsNotCancelled: a file created, deleted and restored inside one reply exists at its end, so
// its events stay (dropping them would hide an existing file from every client); a file created, renamed and
// deleted loses all three.
func TestRestoredItemIsNotCancelled(t *testing.T) {
	r := Start(t, Options{Variants: []string{VariantTrash}})
	a := newAPI(t, r)
	var d tDiff
	a.must("diff", &d, "last", "0")
	from := d.DiffID
	back := a.put(0, "back.txt", []byte("b")).Metadata[0]
	a.must("deletefile", nil, "fileid", u(back.FileID))
	a.must("trash_restore", nil, "fileid", u(back.FileID))
	gone := a.put(0, "gone.txt", []byte("g")).Metadata[0]
	a.must("renamefile", nil, "fileid", u(gone.FileID), "toname", "renamed.txt")
	a.must("deletefile", nil, "fileid", u(gone.FileID))
	a.must("diff", &d, "diffid", u(from))
	if got := strings.Join(d.events(), " "); got != "createfile deletefile createfile" {
		t.Fatalf("events %q, want the restored file's three and none of the deleted one's", got)
	}
}

// TestNewFileIDOnOverwrite: VariantNewFileID gives an overwritten file a new fileid and reports the old one.
func TestNewFileIDOnOverwrite(t *testing.T) {
	r := Start(t, Options{Variants: []string{VariantNewFileID}})
	a := newAPI(t, r)
	first := a.put(0, "f.txt", []byte("one")).Metadata[0]
	second := a.put(0, "f.txt", []byte("two")).Metadata[0]
	if second.FileID == first.FileID || second.DeletedFileID != first.FileID {
		t.Fatalf("overwrite: fileid %d (was %d), deletedfileid %d", second.FileID, first.FileID, second.DeletedFileID)
	}
	a.trashed(first.FileID)
	if data, err := r.Emu.ReadFile("/f.txt"); err != nil || string(data) != "two" {
		t.Fatalf("content %q %v", data, err)
	}
}

// TestFoldBackslash: VariantFoldBackslash stores U+FF3C as a plain backslash.
func TestFoldBackslash(t *testing.T) {
	r := Start(t, Options{Variants: []string{VariantFoldBackslash}})
	a := newAPI(t, r)
	m := a.put(0, "a\uFF3Cb.txt", []byte("x")).Metadata[0]
	if m.Name != `a\b.txt` {
		t.Fatalf("stored name %q", m.Name)
	}
}

func TestParseVariants(t *testing.T) {
	if _, err := ParseVariants([]string{"eu,nope"}); err == nil || !strings.Contains(err.Error(), "reset-on-compaction") {
		t.Fatalf("unknown variant: %v", err)
	}
	got, err := ParseVariants([]string{"eu, new-fileid", "list-limit"})
	if err != nil || !got["eu"] || !got["new-fileid"] || !got["list-limit"] {
		t.Fatalf("%v %v", got, err)
	}
}

// trashed checks that stat describes fileid as deleted (the default reading for a file in the trash).
func (a *api) trashed(fileid uint64) {
	a.t.Helper()
	var r tReply
	a.must("stat", &r, "fileid", u(fileid))
	if !r.Metadata.IsDeleted {
		a.t.Fatalf("stat of trashed file %d: %+v, want isdeleted", fileid, r.Metadata)
	}
}

// TestStatGoneAndHTTPStatus: the two readings of a trashed file's stat, and errors with an HTTP status.
func TestStatGoneAndHTTPStatus(t *testing.T) {
	r := Start(t, Options{Variants: []string{VariantStatGone, VariantHTTPErrorStatus}})
	a := newAPI(t, r)
	fid := a.put(0, "f.txt", []byte("x")).Metadata[0].FileID
	a.must("deletefile", nil, "fileid", u(fid))
	var out tReply
	if st := a.do("GET", "stat", url.Values{"fileid": {u(fid)}}, nil, "", &out); st != 404 || out.Result != 2009 {
		t.Fatalf("stat of a trashed file: HTTP %d result %d, want 404 with 2009", st, out.Result)
	}
}

// TestTrashVariant: the trash keeps content and trash_restore brings a file back with a create event; by default
// the trash methods refuse an OAuth token.
func TestTrashVariant(t *testing.T) {
	a := newAPI(t, Start(t, Options{}))
	a.code(1000, "trash_list")
	r := Start(t, Options{Variants: []string{VariantTrash}})
	a = newAPI(t, r)
	fid := a.put(0, "f.txt", []byte("kept")).Metadata[0].FileID
	a.must("deletefile", nil, "fileid", u(fid))
	var l tReply
	a.must("trash_list", &l)
	if len(l.Metadata.Contents) != 1 || l.Metadata.Contents[0].FileID != fid {
		t.Fatalf("trash: %+v", l.Metadata.Contents)
	}
	var d tDiff
	a.must("diff", &d, "last", "0")
	from := d.DiffID
	a.must("trash_restore", nil, "fileid", u(fid))
	a.must("diff", &d, "diffid", u(from))
	if got := strings.Join(d.events(), " "); got != "createfile" {
		t.Fatalf("restore events %q", got)
	}
	if data, err := r.Emu.ReadFile("/f.txt"); err != nil || string(data) != "kept" {
		t.Fatalf("restored content %q %v", data, err)
	}
}
