package pcloud

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/tandemsync/tandem/remote"
)

// FuzzDecodePCloud feeds arbitrary bytes to the listing, diff and cursor decoders and to the code that turns
// their results into Entries and Changes. It must never panic, and every path it produces must be a valid Path.
func FuzzDecodePCloud(f *testing.F) {
	seeds := []string{
		`{"result":0,"metadata":{"isfolder":true,"folderid":7,"name":"Sync","parentfolderid":0,"contents":[
		  {"isfolder":false,"fileid":3,"name":"a.txt","parentfolderid":7,"size":3,"hash":14841775194319522618,
		   "modified":"Thu, 21 Mar 2013 18:31:45 +0000"},
		  {"isfolder":true,"folderid":8,"name":"d","parentfolderid":7,"contents":[
		   {"isfolder":false,"fileid":4,"name":"..","parentfolderid":8}]}]}}`,
		`{"result":0,"diffid":12,"entries":[{"event":"createfolder","diffid":10,"metadata":{"isfolder":true,
		  "folderid":9,"name":"n","parentfolderid":7}},{"event":"modifyfile","diffid":11,"metadata":{"fileid":3,
		  "name":"b.txt","parentfolderid":9,"hash":1,"deletedfileid":5}},{"event":"deletefolder","diffid":12,
		  "metadata":{"isfolder":true,"folderid":8,"parentfolderid":7,"isdeleted":true}}]}`,
		`{"result":0,"diffid":3,"entries":[{"event":"reset","diffid":3}]}`,
		`{"result":2005,"error":"Directory does not exist."}`,
		`{"result":0,"metadata":{"isfolder":true,"folderid":7,"parentfolderid":7,"name":"loop","contents":[]}}`,
		`{"result":0,"entries":[{"event":"modifyfolder","metadata":{"isfolder":true,"folderid":8,"parentfolderid":8}}]}`,
		"<html>maintenance</html>",
		`{"result":0,"metadata":{"modified":12,"created":"nope"}}`,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Add([]byte(encodeCursor(sampleTree(), 42, time.Unix(1700000000, 0))))
	c, err := New(zap.NewNop(), "/Sync", Options{Endpoint: "http://127.0.0.1:1", Token: "t"})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		check := func(p remote.Path) {
			if _, err := remote.ParsePath(string(p)); err != nil {
				t.Fatalf("produced invalid path %q: %v", p, err)
			}
		}
		// The streaming listing decoder must agree with encoding/json on what it accepts as a folder.
		if st, m, err := decodeListing(bytes.NewReader(data)); err == nil && m != nil && st.Result == 0 {
			tr := newTree(7)
			tr.takeListing(m)
			for _, n := range tr.files {
				if p, ok := tr.path(n); ok {
					check(p)
				}
			}
		}
		var la metaAnswer
		if json.Unmarshal(data, &la) == nil && la.Metadata != nil {
			tr := newTree(7)
			tr.setListing(la.Metadata)
			for _, n := range tr.files {
				if p, ok := tr.path(n); ok {
					check(p)
				}
			}
			_ = c.emit(remote.Root, la.Metadata, func(e remote.Entry) error {
				if e.Skip == "" { // a skipped entry's path is printable, not a Path (remote.Entry.Skip)
					check(e.Path)
				}
				return nil
			})
		}
		var da diffAnswer
		if json.Unmarshal(data, &da) == nil {
			fd := &feed{c: c, ctx: context.Background(), t: sampleTree()}
			for _, e := range da.Entries {
				if e.Metadata != nil && e.Metadata.IsFolder {
					e.Metadata.Contents = nil
					if fd.t.get(true, e.Metadata.FolderID) == nil {
						continue // would list over the network
					}
				}
				if err := fd.apply(e, true); err != nil {
					continue
				}
			}
			for _, ch := range fd.out {
				if ch.Entry.Skip == "" {
					check(ch.Entry.Path)
				}
				if ch.From != "" {
					check(ch.From)
				}
			}
			back := encodeCursor(fd.t, 1, time.Unix(1, 0))
			if _, _, _, err := decodeCursor(back); err != nil {
				t.Fatalf("a cursor the client wrote does not decode: %v", err)
			}
		}
		if tr, _, _, err := decodeCursor(data); err == nil {
			again := encodeCursor(tr, 0, time.Time{})
			tr2, _, _, err := decodeCursor(again)
			if err != nil || tr2.size() != tr.size() {
				t.Fatalf("cursor round trip: %v", err)
			}
		}
		_, _, _, _ = decodeCursor(append([]byte{cursorMagic, cursorVersion}, data...))
		var ai apiTime
		_ = ai.UnmarshalJSON(bytes.TrimSpace(data))
	})
}

func sampleTree() *tree {
	t := newTree(7)
	t.setListed(t.dirs[7])
	p7 := uint64(7)
	p8 := uint64(8)
	t.setListing(&meta{IsFolder: true, FolderID: 8, Name: "d", ParentFolderID: &p7, Contents: []*meta{
		{FileID: 4, Name: "x", ParentFolderID: &p8}}})
	t.set(&meta{FileID: 3, Name: "a.txt", ParentFolderID: &p7})
	return t
}
