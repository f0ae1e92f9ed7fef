package verizon

import (
	"encoding/json"
	"testing"

	"github.com/tandemsync/tandem/remote"
)

// FuzzDecodeVerizon feeds fullview and metadata bodies to the decoders. Properties: no panic; every Path that
// comes out (entries, deletes, move sources) is one ParsePath accepts and lies below the root; Walk order puts
// parents first; changes only name paths the listing holds or deleted.
func FuzzDecodeVerizon(f *testing.F) {
	seeds := []string{
		// §7 full listing
		`{"data":{"file":[{"parentPath":"/VZMOBILE/tandem","name":"todo.txt","size":12,"checksum":"9a1f0e5c7b3d2a8e6f4c1b0d9e7a5c3b1f8d6e4a2c0b9e7d5f3a1c8e6b4d2f0a","contentToken":"ct_dG9kby12MQ","versionCreated":"2024-05-01T10:00:00.000Z","version":1,"extension":"txt","systemAttributes":{"MimeType":"text/plain"}}],"folder":[{"parentPath":"/VZMOBILE/tandem","name":"Empty","versionCreated":"2024-05-02T07:00:00.000Z"}]}}`,
		// §7 delta: rename and removed folder
		`{"data":{"file":[{"parentPath":"/VZMOBILE/tandem","name":"done.txt","size":12,"checksum":"9a1f0e5c7b3d2a8e6f4c1b0d9e7a5c3b1f8d6e4a2c0b9e7d5f3a1c8e6b4d2f0a","contentToken":"ct_dG9kby12MQ","versionCreated":"2024-05-01T10:00:00.000Z","version":1}],"folder":[],"deleted":{"path":["/VZMOBILE/tandem/todo.txt","/VZMOBILE/tandem/Empty"]}}}`,
		// a folder move
		`{"data":{"file":[{"parentPath":"/VZMOBILE/tandem/b/s","name":"x","size":1,"checksum":"9a1f0e5c7b3d2a8e6f4c1b0d9e7a5c3b1f8d6e4a2c0b9e7d5f3a1c8e6b4d2f0a","contentToken":"c","version":1}],"deleted":{"path":["/VZMOBILE/tandem/a","/VZMOBILE/tandem/a/s","/VZMOBILE/tandem/a/s/x"]}}}`,
		// hostile names, a file with children, the root deleted, wrong types
		`{"data":{"file":[{"parentPath":"/VZMOBILE/tandem","name":"..","size":1,"checksum":"9a1f0e5c7b3d2a8e6f4c1b0d9e7a5c3b1f8d6e4a2c0b9e7d5f3a1c8e6b4d2f0a","contentToken":"c","version":1},{"parentPath":"/VZMOBILE/tandem/..","name":"x"},{"parentPath":"/VZMOBILE/tandem","name":"a/b"},{"parentPath":"/VZMOBILE/tandem","name":"f","size":1,"checksum":"9a1f0e5c7b3d2a8e6f4c1b0d9e7a5c3b1f8d6e4a2c0b9e7d5f3a1c8e6b4d2f0a","contentToken":"c","version":1},{"parentPath":"/VZMOBILE/tandem/f","name":"g","size":1,"checksum":"9a1f0e5c7b3d2a8e6f4c1b0d9e7a5c3b1f8d6e4a2c0b9e7d5f3a1c8e6b4d2f0a","contentToken":"d","version":1}],"deleted":{"path":["/VZMOBILE","/VZMOBILE/tandem/\u0000"]}}}`,
		`{"data":{"file":[{"parentPath":"/VZMOBILE/tandem","name":"x","size":"12"}]}}`,
		`{"data":null}`, `<html>maintenance</html>`, ``, `{"folder":{"parentPath":"/VZMOBILE","name":"tandem","file":[],"folder":[]}}`,
		`{"file":{"parentPath":"/VZMOBILE/tandem","name":"a.txt","size":-1}}`,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	const root = "/VZMOBILE/tandem"
	f.Fuzz(func(t *testing.T, body []byte) {
		valid := func(what string, p remote.Path) {
			if p == remote.Root {
				return
			}
			if q, err := remote.ParsePath(string(p)); err != nil || q != p {
				t.Fatalf("%s %q is not a valid Path: %v", what, p, err)
			}
		}
		// The metadata decoder shares the item rules.
		var ma metadataAnswer
		if json.Unmarshal(body, &ma) == nil && ma.File != nil {
			if p, ours, err := itemPath(root, ma.File.ParentPath, ma.File.Name); ours && err == nil {
				valid("metadata", p)
			}
		}
		l, err := decodeFullview(body, root)
		if err != nil {
			return
		}
		held := map[remote.Path]bool{}
		var prev remote.Path
		for i, e := range l.sorted(remote.Root) {
			valid("entry", e.Path)
			held[e.Path] = true
			if i > 0 && !less(prev, e.Path) {
				t.Fatalf("walk order: %q before %q", prev, e.Path)
			}
			if d := e.Path.Dir(); d != remote.Root && !held[d] {
				t.Fatalf("walk order: %q before its parent", e.Path)
			}
			prev = e.Path
		}
		for _, d := range l.deleted {
			valid("deleted", d)
		}
		// Against nothing seen before, the listing is all new (a folder is reset before what it holds is listed:
		// a delete of a path the listing holds as a folder, then its upsert); against itself, nothing changed.
		reset := map[remote.Path]bool{}
		for _, c := range diff(&view{entries: map[remote.Path]seenEntry{}, skips: map[remote.Path]seenSkip{}}, l) {
			if c.Deleted && c.From == "" && l.entries[c.Entry.Path].Dir && !reset[c.Entry.Path] {
				reset[c.Entry.Path] = true
				continue
			}
			if c.Deleted || c.From != "" {
				t.Fatalf("a delete or a move against an empty view: %+v", c)
			}
			delete(reset, c.Entry.Path)
			if c.Entry.Skip != "" {
				continue // a printable path, not a Path (remote.Entry.Skip)
			}
			valid("change", c.Entry.Path)
			if !held[c.Entry.Path] {
				t.Fatalf("upsert of %q, which the answer did not list", c.Entry.Path)
			}
		}
		if len(reset) > 0 {
			t.Fatalf("folders reset and not listed again: %v", reset)
		}
		if chs := diff(viewOf(l), l); len(chs) != 0 {
			t.Fatalf("changes of a listing against itself: %+v", chs)
		}
	})
}
