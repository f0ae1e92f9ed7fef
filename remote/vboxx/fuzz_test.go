package vboxx

import (
	"bytes"
	"strings"
	"testing"

	"github.com/tandemsync/tandem/remote"
)

// FuzzDecodeVBoxx feeds arbitrary bytes to the listing decoder (and, as a second reading, to the cursor
// decoder). Neither may panic; whatever the listing decoder accepts is a folder whose every child is a single
// valid tandem name directly below it; a cursor that decodes encodes back to itself.
func FuzzDecodeVBoxx(f *testing.F) {
	f.Add([]byte(`{"children":[{"created":"2024-02-19T07:40:11","id":77102,"is_deleted":false,"is_locked":false,` +
		`"modified":"2024-02-19T07:40:11","path":"/notes.txt","revision_id":80455,"root_id":318,"size":912,` +
		`"type":"file"},{"id":5120,"is_deleted":false,"path":"/Projects","root_id":318,"type":"folder"}],` +
		`"hash":"3b9e0c4d7a1f62e85c0d9b4a7e3f1c6d2a8b5e90","id":318,"name":"Anna","path":"/","root_type":"sync",` +
		`"space_used":"7340032","type":"root"}`))
	f.Add([]byte(`{"type":"folder","id":"5120","path":"/P","children":[{"type":"file","id":1,"path":"/P/../x",` +
		`"revision_id":2,"size":1},{"type":"file","id":2,"path":"/Q/x","revision_id":2,"size":1},` +
		`{"type":"file","id":3,"path":"/P/.tandem","revision_id":"4","size":"1"},{"type":"x","id":4,"path":"/P/y"}]}`))
	f.Add([]byte(`<html>maintenance</html>`))
	f.Add([]byte(`{"type":"folder","path":"/","children":[{"type":"file","id":1.5,"path":"/a"}]}`))
	st := newState(318, 0)
	st.addDir(10, 0, "a")
	st.addFile(11, 10, "b", 3)
	f.Add([]byte(st.encode()))
	f.Fuzz(func(t *testing.T, data []byte) {
		obj, _, err := decodeListing(data)
		if err == nil {
			if !strings.HasPrefix(obj.Path, "/") || !obj.isFolder() {
				t.Fatalf("accepted %+v", obj)
			}
			for _, c := range obj.Children {
				if why := checkChild(obj.Path, c); why != "" {
					t.Fatalf("accepted child %q: %s", c.Path, why)
				}
				if _, err := remote.Path("").Join(c.name()); err != nil {
					t.Fatalf("accepted name %q: %v", c.name(), err)
				}
			}
		}
		if st, err := decodeCursorRaw(data); err == nil {
			enc := st.encode()
			st2, err := decodeCursorRaw(enc)
			if err != nil || !bytes.Equal(st2.encode(), enc) {
				t.Fatalf("cursor round trip: %v", err)
			}
		}
	})
}
