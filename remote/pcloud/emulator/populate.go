package emulator

import (
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"fmt"
	"strings"
)

// Populate creates, under the existing folder at path parent ("/" or "/Big"), `folders` folders d00000... each
// holding `files` empty files f00000.txt..., with their create events, in one transaction. It is for listing
// benchmarks and size tests (500,000 items in seconds, where uploads would take minutes): the files are empty
// and have no content blob, so they can be listed, moved and deleted but not downloaded.
func (e *Emulator) Populate(parent string, folders, files int) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	p := e.folders[0]
	if parent != "/" {
		var err error
		if p, err = e.resolveFolderPath(strings.TrimSuffix(parent, "/")); err != nil {
			return fmt.Errorf("populate %s: %w", parent, err)
		}
	}
	h1, h5, h256 := sha1.New(), md5.New(), sha256.New()
	d := sumDigests(0, h1, h5, h256)
	now := e.clk.Now().Unix()
	ch := &change{}
	for i := range folders {
		f := &node{ID: e.cnt.NextFolderID, Folder: true, Parent: p.ID, Name: fmt.Sprintf("d%05d", i), Created: now,
			Modified: now}
		e.cnt.NextFolderID++
		e.folders[f.ID] = f
		e.link(f)
		ch.put(f)
		e.appendEvent(ch, "createfolder", f, 0)
		for j := range files {
			name := fmt.Sprintf("f%05d.txt", j)
			n := &node{ID: e.cnt.NextFileID, Parent: f.ID, Name: name, Created: now, Modified: now,
				Hash: d.hash, SHA1: d.sha1, MD5: d.md5, SHA256: d.sha256, ContentType: contentType(name)}
			e.cnt.NextFileID++
			e.files[n.ID] = n
			e.link(n)
			ch.put(n)
			e.appendEvent(ch, "createfile", n, 0)
		}
	}
	return e.commit(ch)
}
