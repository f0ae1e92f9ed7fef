package pcloud

import (
	"context"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/tandemsync/tandem/remote"
	"github.com/tandemsync/tandem/remote/pcloud/emulator"
)

// replayChanges applies a feed's changes to a set of paths (path -> "dir" or "file") as the engine does: a From
// moves the whole subtree, a delete drops it.
func replayChanges(start map[remote.Path]string, changes []remote.Change) map[remote.Path]string {
	out := maps.Clone(start)
	subtree := func(p remote.Path) []remote.Path {
		var ps []remote.Path
		for q := range out {
			if q == p || strings.HasPrefix(string(q), string(p)+"/") {
				ps = append(ps, q)
			}
		}
		return ps
	}
	for _, c := range changes {
		if c.From != "" && c.From != c.Entry.Path {
			moved := map[remote.Path]string{}
			for _, q := range subtree(c.From) {
				moved[c.Entry.Path+remote.Path(strings.TrimPrefix(string(q), string(c.From)))] = out[q]
				delete(out, q)
			}
			maps.Copy(out, moved)
		}
		if c.Deleted {
			for _, q := range subtree(c.Entry.Path) {
				delete(out, q)
			}
			continue
		}
		kind := "file"
		if c.Entry.Dir {
			kind = "dir"
		}
		out[c.Entry.Path] = kind
	}
	return out
}

func walkPaths(t *testing.T, r remote.Remote) map[remote.Path]string {
	t.Helper()
	out := map[remote.Path]string{}
	if err := r.Walk(context.Background(), remote.Root, func(e remote.Entry) error {
		if e.Path == remote.Root {
			return nil
		}
		kind := "file"
		if e.Dir {
			kind = "dir"
		}
		out[e.Path] = kind
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func diffPaths(got, want map[remote.Path]string) string {
	var s []string
	for p, k := range got {
		if want[p] != k {
			s = append(s, "only in the replay: "+string(p)+" ("+k+")")
		}
	}
	for p, k := range want {
		if got[p] != k {
			s = append(s, "only on the server: "+string(p)+" ("+k+")")
		}
	}
	slices.Sort(s)
	return strings.Join(s, "\n")
}

// The torture's phantom (seed 561752): a folder is created, then items the cursor already knew elsewhere are
// moved into it. The feed lists the new folder as it is *now*, which already holds them: taking that listing
// as is moved them in the feed's tree without a word, so the later move events had no From and the engine kept
// the old paths for good (a file downloaded again that no longer existed there, or a local copy never removed).
// Replaying the changes from the old cursor must end at the server's tree.
func TestMoveIntoNewFolderArrivesWithFrom(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, r, other := pair(t, emulator.Options{}, Options{})
	mustPut(t, other, "a.txt", []byte("a"), remote.Precondition{})
	if _, err := other.Mkdir(ctx, "d"); err != nil {
		t.Fatal(err)
	}
	mustPut(t, other, "d/f.txt", []byte("f"), remote.Precondition{})
	cur, err := r.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	start := walkPaths(t, r)
	if _, err := other.Mkdir(ctx, "n"); err != nil {
		t.Fatal(err)
	}
	if _, err := other.Move(ctx, "a.txt", "n/b.txt", remote.Precondition{}); err != nil {
		t.Fatal(err)
	}
	if _, err := other.Move(ctx, "d", "n/d2", remote.Precondition{}); err != nil {
		t.Fatal(err)
	}
	for _, fresh := range []bool{false, true} {
		c := r
		if fresh {
			// A new process decodes the cursor instead of reusing the tree in memory.
			c = newClient(t, nil, "/Sync", Options{Endpoint: r.base.String(), Token: r.o.Token})
		}
		all, _ := drainChanges(t, c, cur)
		if d := diffPaths(replayChanges(start, all), walkPaths(t, other)); d != "" {
			t.Errorf("fresh=%v: the changes %+v do not end at the server's tree:\n%s", fresh, all, d)
		}
		var from []string
		for _, ch := range all {
			if ch.From != "" {
				from = append(from, string(ch.From)+"->"+string(ch.Entry.Path))
			}
		}
		slices.Sort(from)
		if got := strings.Join(from, " "); got != "a.txt->n/b.txt d->n/d2" {
			t.Errorf("fresh=%v: moves %q, want a.txt->n/b.txt d->n/d2", fresh, got)
		}
	}
}
